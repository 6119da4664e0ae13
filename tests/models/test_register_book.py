import pytest
from mongoengine import ValidationError

from models.register_book import RegisterBook, check_template


def test_bare_number_gets_a_leading_zero():
    assert check_template("{number}/{type_abbr}-{agency_abbr}") == (
        "{number:02d}/{type_abbr}-{agency_abbr}"
    )
    assert check_template("{number:03d}/{year}/QĐ-{agency_abbr}") == (
        "{number:03d}/{year}/QĐ-{agency_abbr}"
    )
    # Escaped braces stay literal text.
    assert check_template("{{x}} {number}") == "{{x}} {number:02d}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{number:02d}/{loai}-{agency_abbr}", "trường không được hỗ trợ: {loai}"),
        ("{number.__class__}/QĐ", "trường không được hỗ trợ: {number.__class__}"),
        ("{number[0]}/QĐ", "trường không được hỗ trợ"),
        ("{number!r}/QĐ", "trường không được hỗ trợ: {number!r}"),
        ("{type_abbr}-{agency_abbr}", "phải có trường {number}"),
        ("{number:02d}/{type_abbr", "dấu ngoặc { } không khớp"),
        ("{number:s}/{type_abbr}", "định dạng không hợp lệ"),
        ("   ", "không được để trống"),
    ],
)
def test_bad_templates_are_refused_in_vietnamese(template, message):
    with pytest.raises(ValidationError) as err:
        check_template(template)
    assert message in err.value.message


def test_book_save_validates_and_normalizes_templates():
    book = RegisterBook(name="Sổ thử", direction="outgoing", number_format="{number}/{x}")
    with pytest.raises(ValidationError, match="Các trường dùng được"):
        book.save()
    book.number_format = " {number}/TB-{agency_abbr} "
    book.save()
    assert RegisterBook.objects.get(pk=book.pk).number_format == "{number:02d}/TB-{agency_abbr}"


def test_counters_are_per_book_and_year():
    a = RegisterBook(name="A", direction="outgoing").save()
    b = RegisterBook(name="B", direction="outgoing").save()
    assert [a.take_number(2026) for _ in range(3)] == [1, 2, 3]
    assert a.take_number(2027) == 1
    assert b.take_number(2026) == 1
    assert a.last_number(2026) == 3 and a.last_number(2028) == 0


def test_seeded_books_for_the_current_year():
    from models.register_book import vn_today

    names = {(b.name, b.direction, b.secret) for b in RegisterBook.objects(year=vn_today().year)}
    assert names == {
        ("Sổ văn bản đến", "incoming", False),
        ("Sổ văn bản đến Mật", "incoming", True),
        ("Sổ văn bản đi", "outgoing", False),
        ("Sổ công văn đi", "outgoing", False),
        ("Sổ văn bản đi Mật", "outgoing", True),
        ("Sổ văn bản nội bộ", "internal", False),
    }
    letter = RegisterBook.objects.get(name="Sổ công văn đi")
    assert [t.name for t in letter.doc_types] == ["Công văn"]
    assert letter.number_format == "{number:02d}/{agency_abbr}-{unit_abbr}"
