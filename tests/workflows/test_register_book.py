import datetime as dt
import threading

import pytest
import time_machine

from models.audit import AuditEntry
from models.document import Document
from models.document_type import DocumentType
from models.organization import Unit
from models.register_book import VN_TZ, CancelledNumber, NumberReservation, RegisterBook, vn_today
from workflows.errors import ValidationFailed
from workflows.register_book import (
    AlreadyNumbered,
    AmbiguousRegisterBook,
    BookMismatch,
    DuplicateDocument,
    NoRegisterBook,
    RegisterError,
    ReissueNotAllowed,
    ReservationUnavailable,
    assign_arrival_number,
    assign_number,
    book_for,
    cancel_number,
    cancel_reservation,
    check_duplicates,
    find_duplicates,
    reissuable_numbers,
    reissue_cancelled_number,
    reserve_number,
)


def vn(year, month, day, hour=9):
    return dt.datetime(year, month, day, hour, tzinfo=VN_TZ)


def doc_type(abbr):
    return DocumentType.objects.get(abbreviation=abbr)


def letter():
    return DocumentType.objects.get(name="Công văn")


def unit(abbr="QLTM"):
    return Unit.objects.get(abbreviation=abbr)


def outgoing(abbr="QĐ", **kw):
    kw.setdefault("issuer_unit", unit())
    kw.setdefault("direction", "outgoing")
    return Document(
        subject="Về việc thử cấp số", doc_type=kw.pop("type", None) or doc_type(abbr), **kw
    )


def numbered(abbr="QĐ", **kw):
    doc = outgoing(abbr, **kw)
    assign_number(doc)
    return doc.save()


def perennial_books():
    """Replace the seeded books of this year by books for every year (for time travel)."""
    RegisterBook.objects.update(set__active=False)
    return {
        "out": RegisterBook(name="Sổ đi chung", direction="outgoing").save(),
        "in": RegisterBook(name="Sổ đến chung", direction="incoming").save(),
    }


# Numbering ---------------------------------------------------------------------------------


def test_numbers_below_ten_get_a_leading_zero():
    docs = [numbered() for _ in range(10)]
    assert [d.notation for d in docs[:2]] == ["01/QĐ-SCT", "02/QĐ-SCT"]
    assert docs[8].notation == "09/QĐ-SCT" and docs[9].notation == "10/QĐ-SCT"
    assert [d.number for d in docs] == list(range(1, 11))
    book = RegisterBook.objects.get(name="Sổ văn bản đi")
    assert all(d.register_book == book and d.registered_year == vn_today().year for d in docs)


def test_official_letters_use_the_unit_abbreviation_and_their_own_book():
    typed = numbered("KH")
    cv = numbered(type=letter(), issuer_unit=unit("KHTC"))
    cv2 = numbered(type=letter())
    assert typed.notation == "01/KH-SCT"
    assert cv.notation == "01/SCT-KHTC" and cv2.notation == "02/SCT-QLTM"
    assert cv.register_book.name == "Sổ công văn đi"
    assert typed.register_book.name == "Sổ văn bản đi"


def test_a_book_for_all_types_uses_its_letter_template_for_a_cong_van():
    RegisterBook.objects(name="Sổ công văn đi").update(set__active=False)
    docs = [numbered("TB"), numbered(type=letter(), issuer_unit=unit("VP"))]
    assert [d.notation for d in docs] == ["01/TB-SCT", "02/SCT-VP"]


def test_secret_documents_go_to_the_secret_book_with_their_own_sequence():
    normal = numbered()
    secret = numbered(secrecy=2)
    assert secret.register_book.name == "Sổ văn bản đi Mật"
    assert normal.number == secret.number == 1
    normal_book = RegisterBook.objects.get(name="Sổ văn bản đi")
    with pytest.raises(BookMismatch, match="Văn bản mật phải vào sổ riêng"):
        assign_number(outgoing(secrecy=1), book=normal_book)
    with pytest.raises(BookMismatch, match="chỉ dành cho văn bản mật"):
        assign_number(outgoing(), book=secret.register_book)
    # A secret 01/QĐ-SCT does not duplicate the normal 01/QĐ-SCT.
    assert find_duplicates(secret) == []


def test_issue_date_is_today_in_vietnam_unless_given():
    with time_machine.travel(dt.datetime(2026, 3, 1, 18, 30, tzinfo=dt.UTC), tick=False):
        perennial_books()
        doc = outgoing()
        assign_number(doc)
        assert doc.issued_on == dt.date(2026, 3, 2)  # 01:30 on 2 March in Hà Nội
        given = outgoing(issued_on=dt.date(2026, 2, 27))
        assign_number(given)
        assert given.issued_on == dt.date(2026, 2, 27)


def test_a_new_year_starts_again_at_01():
    with time_machine.travel(vn(2026, 12, 31, 16), tick=False):
        perennial_books()
        last_year = [numbered() for _ in range(3)]
    # 31 December 17:30 UTC is already 1 January in Vietnam.
    with time_machine.travel(dt.datetime(2026, 12, 31, 17, 30, tzinfo=dt.UTC), tick=False):
        first = numbered()
    assert [d.notation for d in last_year] == ["01/QĐ-SCT", "02/QĐ-SCT", "03/QĐ-SCT"]
    assert first.notation == "01/QĐ-SCT" and first.registered_year == 2027
    assert find_duplicates(first) == []  # same number, another year


def test_a_book_of_one_year_refuses_another_year():
    book = RegisterBook(name="Sổ đi 2026", direction="outgoing", year=2026).save()
    with time_machine.travel(vn(2027, 1, 2), tick=False):
        with pytest.raises(BookMismatch, match="dành cho năm 2026"):
            assign_number(outgoing(), book=book)
        with pytest.raises(NoRegisterBook, match="Chưa có sổ văn bản đi năm 2027"):
            book_for(outgoing())


def test_the_most_specific_book_wins_and_ties_are_refused():
    vp_book = RegisterBook(
        name="Sổ QĐ của Văn phòng",
        direction="outgoing",
        doc_types=[doc_type("QĐ")],
        units=[unit("VP")],
    ).save()
    sub = Unit(name="Tổ Hành chính", abbreviation="HC", parent=unit("VP")).save()
    assert book_for(outgoing(issuer_unit=sub)) == vp_book  # sub-units belong to their unit
    assert book_for(outgoing(issuer_unit=unit("KHTC"))).name == "Sổ văn bản đi"
    RegisterBook(
        name="Sổ QĐ của Văn phòng (2)",
        direction="outgoing",
        doc_types=[doc_type("QĐ")],
        units=[unit("VP")],
    ).save()
    with pytest.raises(AmbiguousRegisterBook, match="Có nhiều sổ cùng phù hợp"):
        book_for(outgoing(issuer_unit=unit("VP")))


def test_a_number_is_not_spent_when_the_notation_cannot_be_made():
    book = RegisterBook.objects.get(name="Sổ công văn đi")
    doc = outgoing(type=letter(), issuer_unit=None)
    with pytest.raises(RegisterError, match="thiếu viết tắt đơn vị soạn thảo"):
        assign_number(doc)
    assert book.last_number(vn_today().year) == 0 and doc.number is None


def test_numbering_refuses_what_it_must_not_number():
    doc = numbered()
    with pytest.raises(AlreadyNumbered, match="đã được cấp số 01/QĐ-SCT"):
        assign_number(doc)
    with pytest.raises(RegisterError, match="văn bản đến được cấp số đến"):
        assign_number(Document(direction="incoming", subject="x"))
    with pytest.raises(RegisterError, match="chọn loại trước khi cấp số"):
        assign_number(Document(direction="outgoing", subject="x"))


def test_numbering_is_audited():
    doc = numbered()
    entry = AuditEntry.objects(action="register.number_assigned").first()
    assert entry.detail["notation"] == doc.notation == "01/QĐ-SCT"
    assert entry.detail["book"].startswith("Sổ văn bản đi")


def test_internal_documents_have_their_own_book():
    doc = numbered("TB", direction="internal")
    assert doc.register_book.name == "Sổ văn bản nội bộ" and doc.notation == "01/TB-SCT"


def test_concurrent_requests_get_distinct_consecutive_numbers():
    book = RegisterBook.objects.get(name="Sổ văn bản đi")
    qd, qltm = doc_type("QĐ"), unit()
    numbers, notations, errors = [], set(), []
    guard = threading.Lock()
    start = threading.Barrier(200)

    def worker():
        start.wait()
        try:
            for _ in range(5):
                doc = Document(direction="outgoing", subject="x", doc_type=qd, issuer_unit=qltm)
                assign_number(doc, book=book)
                with guard:
                    numbers.append(doc.number)
                    notations.add(doc.notation)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(numbers) == list(range(1, 1001))
    assert len(notations) == 1000
    assert book.last_number(vn_today().year) == 1000


# Arrival numbers ---------------------------------------------------------------------------


def test_arrival_numbers_are_consecutive_and_secret_ones_separate():
    docs = []
    for i in range(3):
        doc = Document(direction="incoming", subject=f"Đến {i}", issuer="UBND tỉnh")
        assign_arrival_number(doc)
        docs.append(doc.save())
    secret = Document(direction="incoming", subject="Mật", secrecy=1)
    assign_arrival_number(secret)
    assert [d.arrival_number for d in docs] == [1, 2, 3]
    assert all(d.arrival_at is not None and d.register_book.name == "Sổ văn bản đến" for d in docs)
    assert secret.arrival_number == 1 and secret.register_book.name == "Sổ văn bản đến Mật"
    with pytest.raises(AlreadyNumbered, match="đã có số đến 01"):
        assign_arrival_number(docs[0])
    with pytest.raises(RegisterError, match="Chỉ văn bản đến"):
        assign_arrival_number(outgoing())


def test_arrival_numbers_restart_each_year():
    with time_machine.travel(vn(2026, 12, 31), tick=False):
        perennial_books()
        for _ in range(2):
            assign_arrival_number(Document(direction="incoming", subject="x"))
    with time_machine.travel(vn(2027, 1, 1), tick=False):
        doc = Document(direction="incoming", subject="x")
        assign_arrival_number(doc)
    assert doc.arrival_number == 1 and doc.registered_year == 2027


# Reservations and cancelled numbers --------------------------------------------------------


def test_a_reserved_number_is_skipped_then_used_once(users):
    book = RegisterBook.objects.get(name="Sổ văn bản đi")
    clerk = users["vanthu"]
    reserved = reserve_number(book, clerk, "Giữ số cho quyết định khen thưởng")
    after = numbered()
    assert (reserved, after.number) == (1, 2)
    doc = outgoing()
    assign_number(doc, reserved_number=reserved, actor_id=str(clerk.pk))
    assert doc.notation == "01/QĐ-SCT"
    row = NumberReservation.objects.get(book=book, number=1)
    assert row.status == "used" and row.reserved_by_name == clerk.full_name
    with pytest.raises(ReservationUnavailable, match="không được giữ trước hoặc đã dùng"):
        assign_number(outgoing(), reserved_number=reserved)
    with pytest.raises(ValidationFailed, match="Vui lòng nhập lý do giữ số"):
        reserve_number(book, clerk, "  ")
    actions = set(AuditEntry.objects(actor_id=str(clerk.pk)).distinct("action"))
    assert {"register.number_reserved", "register.number_assigned"} <= actions


def test_a_number_cancelled_today_can_be_reissued_today_only(users):
    clerk = users["vanthu"]
    with time_machine.travel(vn(2026, 3, 2, 9), tick=False):
        books = perennial_books()
        first, second = numbered(), numbered()
        cancel_number(second, clerk, "Sai trích yếu, soạn lại")
        second.save()
        assert second.number is None and second.notation is None
        assert [c.number for c in reissuable_numbers(books["out"])] == [2]
    with time_machine.travel(vn(2026, 3, 2, 16), tick=False):
        replacement = outgoing("TB")
        assert reissue_cancelled_number(books["out"], replacement, actor_id=str(clerk.pk)) == 2
        assert replacement.notation == "02/TB-SCT"
        assert replacement.issued_on == dt.date(2026, 3, 2)
        with pytest.raises(ReissueNotAllowed, match="không có số bị hủy"):
            reissue_cancelled_number(books["out"], outgoing())
        third = numbered()
        assert third.number == 3  # the counter never went back
        cancel_number(third, clerk, "Hủy để thử ngày hôm sau")
    with time_machine.travel(vn(2026, 3, 3, 8), tick=False):
        with pytest.raises(ReissueNotAllowed, match="bị hủy ngày 02/03/2026"):
            reissue_cancelled_number(books["out"], outgoing(), number=3)
        assert numbered().number == 4
    assert first.number == 1
    cancelled = CancelledNumber.objects.get(number=2)
    assert cancelled.reissued and cancelled.notation == "02/QĐ-SCT"
    assert cancelled.cancelled_by_name == clerk.full_name
    assert AuditEntry.objects(action="register.number_cancelled").count() == 2
    assert AuditEntry.objects(action="register.number_reissued").first().detail["number"] == 2


def test_a_cancelled_reservation_can_be_reissued_the_same_day(users):
    book = RegisterBook.objects.get(name="Sổ văn bản đi")
    number = reserve_number(book, users["vanthu"], "Giữ số")
    cancel_reservation(book, number, users["vanthu"], "Không dùng nữa")
    with pytest.raises(ReservationUnavailable):
        assign_number(outgoing(), reserved_number=number)
    doc = outgoing()
    assert reissue_cancelled_number(book, doc) == number == 1
    assert NumberReservation.objects.get(number=1).status == "cancelled"


def test_cancel_needs_a_number_and_a_reason(users):
    with pytest.raises(RegisterError, match="chưa được cấp số"):
        cancel_number(outgoing(), users["vanthu"], "Lý do")
    with pytest.raises(ValidationFailed, match="lý do hủy số"):
        cancel_number(numbered(), users["vanthu"], "")


# Duplicates --------------------------------------------------------------------------------


def incoming(notation, issuer="UBND tỉnh Đồng Nai", issued_on=dt.date(2026, 2, 10), **kw):
    return Document(
        direction="incoming",
        subject="Về việc tăng cường quản lý",
        notation=notation,
        issuer=issuer,
        issued_on=issued_on,
        **kw,
    )


def test_incoming_duplicates_match_notation_issuer_and_year(users):
    first = incoming("125/UBND-KT").save()
    assert find_duplicates(incoming(" 125/ubnd-kt ", issuer="ubnd tỉnh đồng nai")) == [first]
    assert find_duplicates(incoming("125/UBND-KT", issuer="Sở Tài chính")) == []
    assert find_duplicates(incoming("125/UBND-KT", issued_on=dt.date(2025, 2, 10))) == []
    assert find_duplicates(incoming("126/UBND-KT")) == []
    assert find_duplicates(first) == []  # not a duplicate of itself
    again = incoming("125/UBND-KT")
    with pytest.raises(DuplicateDocument, match="có thể đã được đăng ký: 125/UBND-KT") as err:
        check_duplicates(again)
    assert err.value.duplicates == [first]
    assert check_duplicates(again, confirmed=True, actor_id=str(users["vanthu"].pk)) == [first]
    assert AuditEntry.objects(action="register.duplicate_confirmed").count() == 1


def test_outgoing_duplicates_match_the_number_in_the_book_and_year():
    doc = numbered()
    twin = outgoing(
        "TB",
        number=doc.number,
        register_book=doc.register_book,
        registered_year=doc.registered_year,
        notation="01/TB-SCT",
    )
    assert find_duplicates(twin) == [doc]
    other_year = outgoing(
        number=doc.number, register_book=doc.register_book, registered_year=doc.registered_year - 1
    )
    assert find_duplicates(other_year) == []
    same_text = outgoing(notation="01/QĐ-SCT", registered_year=doc.registered_year)
    assert find_duplicates(same_text) == [doc]
