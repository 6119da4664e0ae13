import pytest
from mongoengine import ValidationError

from models.role import PERMISSIONS, Role


def test_seeded_roles_grant_what_the_domain_needs(users):
    assert users["vanthu"].can("document.register_incoming")
    assert users["vanthu"].can("document.seal")
    assert not users["chuyenvien"].can("document.sign")
    assert users["giamdoc"].can("document.sign")
    assert users["admin"].can("admin.users")
    assert not users["admin"].can("document.sign")


def test_role_refuses_permissions_outside_the_registry():
    role = Role(code="thu_nghiem", name="Thử nghiệm", permissions=["document.sign", "nuke.all"])
    with pytest.raises(ValidationError, match=r"nuke\.all"):
        role.save()


def test_admin_grants_a_new_permission_by_data(users):
    role = Role.objects.get(code="chuyen_vien")
    role.permissions = [*role.permissions, "archive.search"]
    role.save()
    from models.user import User

    assert User.objects.get(username="chuyenvien").can("archive.search")
    assert set(role.permissions) <= set(PERMISSIONS)


def test_principals_name_the_user_unit_and_roles(users):
    user = users["chuyenvien"]
    principals = user.principals()
    assert f"user:{user.pk}" in principals
    assert f"unit:{user.unit.pk}" in principals
    assert "role:chuyen_vien" in principals
