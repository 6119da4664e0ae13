import pytest

from models.audit import AuditEntry
from models.organization import Unit
from models.role import Role
from tests.conftest import csrf_token, web_login


@pytest.mark.parametrize(
    ("username", "url", "status"),
    [
        ("chuyenvien", "/unit/", 403),
        ("chuyenvien", "/user/", 403),
        ("vanthu", "/audit/", 403),
        ("giamdoc", "/role/", 403),
        ("admin", "/unit/", 200),
        ("admin", "/user/", 200),
        ("admin", "/role/", 200),
        ("admin", "/audit/", 200),
        ("admin", "/document_type/", 200),
    ],
)
def test_admin_screens_check_the_permission(client, username, url, status):
    web_login(client, username)
    assert client.get(url).status_code == status


def test_menu_hides_what_the_user_cannot_open(client):
    page = web_login(client, "chuyenvien")
    assert "/unit/" not in page.text
    page = client.get("/")
    assert "Quyền của bạn" in page.text


def test_admin_creates_a_unit_and_it_is_audited(client):
    web_login(client, "admin")
    form = client.get("/unit/new/")
    parent = Unit.objects.get(abbreviation="VP")
    response = client.post(
        "/unit/new/",
        data={
            "name": "Tổ Công nghệ thông tin",
            "abbreviation": "CNTT",
            "kind": "department",
            "parent": str(parent.pk),
            "order": "9",
            "active": "y",
            "csrf_token": csrf_token(form.text),
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    unit = Unit.objects.get(abbreviation="CNTT")
    assert unit.ancestors == [parent.pk]
    assert "Tổ Công nghệ thông tin" in client.get("/unit/").text
    entry = AuditEntry.objects(object_type="Unit", object_id=str(unit.pk)).first()
    assert entry.action == "create" and entry.actor_name == "Quản trị Hệ thống"


def test_admin_form_without_csrf_is_refused(client):
    web_login(client, "admin")
    response = client.post("/unit/new/", data={"name": "X", "abbreviation": "X"})
    assert response.status_code == 400
    assert not Unit.objects(abbreviation="X").first()


def test_unit_cannot_be_its_own_ancestor(client):
    parent = Unit.objects.get(abbreviation="VP")
    child = Unit(name="Tổ Hành chính", abbreviation="HC", parent=parent).save()
    parent.parent = child
    from mongoengine import ValidationError

    with pytest.raises(ValidationError, match="không được là chính nó"):
        parent.save()


def test_audit_log_is_read_only_in_the_portal(client):
    web_login(client, "admin")
    entry = AuditEntry.objects.first()
    assert client.get("/audit/new/").status_code in (302, 403, 404)
    assert client.get(f"/audit/edit/?id={entry.pk}").status_code in (302, 403, 404)
    page = client.get("/audit/")
    assert "Nhật ký hệ thống" in page.text


def test_admin_creates_a_user_with_a_hashed_password(client):
    web_login(client, "admin")
    form = client.get("/user/new/")
    unit = Unit.objects.get(abbreviation="QLTM")
    role = Role.objects.get(code="chuyen_vien")
    data = {
        "username": "nguoimoi",
        "full_name": "Người Mới",
        "unit": str(unit.pk),
        "clearance": "0",
        "active": "y",
        "new_password": "ngan",
        "csrf_token": csrf_token(form.text),
    }
    no_role = client.post("/user/new/", data=data, follow_redirects=True)
    assert "Chọn ít nhất một vai trò." in no_role.text
    assert "Không thể tạo bản ghi." in no_role.text  # our catalog fills Flask-Admin gaps
    data["roles"] = str(role.pk)
    weak = client.post("/user/new/", data=data, follow_redirects=True)
    assert "ít nhất 10 ký tự" in weak.text
    data["new_password"] = "MatKhau-Manh-2026"
    client.post("/user/new/", data=data, follow_redirects=True)
    from models.user import User

    user = User.objects.get(username="nguoimoi")
    assert user.password_hash.startswith("$argon2id$")
    entry = AuditEntry.objects(object_id=str(user.pk), action="create").first()
    assert "MatKhau-Manh-2026" not in str(entry.to_mongo())
