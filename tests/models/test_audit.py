import pytest

from models.audit import Actor, AuditEntry, acting_as
from models.organization import Unit


def test_create_update_delete_are_logged_with_the_actor():
    actor = Actor(user_id="u1", name="Người kiểm thử", ip="10.0.0.9")
    with acting_as(actor):
        unit = Unit(name="Phòng Thử nghiệm", abbreviation="TN").save()
        unit.name = "Phòng Thử nghiệm 2"
        unit.save()
        unit.delete()
    entries = list(AuditEntry.objects(object_type="Unit", object_id=str(unit.pk)).order_by("at"))
    assert [e.action for e in entries] == ["create", "update", "delete"]
    assert all(e.actor_name == "Người kiểm thử" and e.ip == "10.0.0.9" for e in entries)
    assert entries[1].detail["changes"] == {"name": "Phòng Thử nghiệm 2"}


def test_secret_fields_never_reach_the_log(users):
    user = users["chuyenvien"]
    user.totp_secret = "JBSWY3DPEHPK3PXP"
    user.save()
    entry = AuditEntry.objects(object_id=str(user.pk), action="update").first()
    assert entry.detail["changes"]["totp_secret"] == "***"
    assert "JBSWY3DPEHPK3PXP" not in str(entry.to_mongo())


def test_audit_entries_cannot_be_edited_or_deleted():
    entry = AuditEntry.objects.first()
    assert entry is not None
    entry.action = "forged"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.update(set__action="forged")
    with pytest.raises(PermissionError):
        AuditEntry.objects.delete()
