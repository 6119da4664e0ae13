"""Export of a case file: a PDF bundle real tools open, and well-formed XML metadata."""

import io
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest
from pypdf import PdfReader

from tests.workflows.test_case_file import add_pdf, finished_incoming, migrated_document
from workflows import case_file as cf
from workflows.case_file_export import export_pdf, export_xml
from workflows.errors import Forbidden
from workflows.signing.demo_pdf import SampleDocument, make_sample_pdf


@pytest.fixture
def bundle_file(make_document, users, units):
    """A closed file: an incoming PDF (2 pages), a migrated PDF, no PDF, a damaged PDF."""
    incoming = finished_incoming(make_document, users, signer_name="Võ Văn Chánh")
    add_pdf(
        incoming,
        make_sample_pdf(
            SampleDocument(number="12/UBND-KT", summary="Về việc kiểm tra thị trường dịp Tết"),
            pages=2,
        ),
    )
    migrated = migrated_document(units, pages=None)
    add_pdf(
        migrated,
        make_sample_pdf(SampleDocument(number="35/BC-BCT", summary="Báo cáo thị trường 2025")),
    )
    paper = migrated_document(
        units, legacy_id="3-VBĐT", notation="41/TB-SCT", subject="Thông báo lịch trực Tết"
    )
    broken = migrated_document(
        units,
        legacy_id="4-VBĐT",
        notation="42/GM-SCT",
        subject="Giấy mời họp giao ban",
        pages=None,
    )
    add_pdf(broken, b"%PDF-1.7 this is not really a PDF")
    case_file = cf.open_case_file(
        users["chuyenvien"],
        {"code": "07.QLTM", "title": "Hồ sơ kiểm tra thị trường Tết", "retention": "07.02"},
    )
    for doc in (incoming, migrated, paper, broken):
        cf.attach_document(users["chuyenvien"], case_file.pk, doc.pk)
    return cf.close_case_file(users["chuyenvien"], case_file.pk)


def test_pdf_bundle_opens_and_lists_every_document(bundle_file, users, tmp_path):
    data = export_pdf(bundle_file, users["chuyenvien"])
    reader = PdfReader(io.BytesIO(data))
    cover_pages = len(reader.pages) - (2 + 1 + 1 + 1)
    assert cover_pages >= 2  # cover sheet, then the index
    outline = [item.title for item in reader.outline]
    assert outline == [
        "Bìa và mục lục hồ sơ",
        "1. 12/UBND-KT",
        "2. 35/BC-BCT",
        "3. 41/TB-SCT",
        "4. 42/GM-SCT",
    ]
    path = tmp_path / "ho-so.pdf"
    path.write_bytes(data)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout
    pages = text.split("\f")
    cover = "\n".join(pages[:cover_pages])
    assert f"000.00.19.H19.{bundle_file.year}.07.QLTM" in cover
    assert "Hồ sơ kiểm tra thị trường Tết" in cover and "15 năm" in cover
    assert "MỤC LỤC VĂN BẢN" in cover
    for notation in ("12/UBND-KT", "35/BC-BCT", "41/TB-SCT", "42/GM-SCT"):
        assert notation in cover
    assert "Số đến 7" in cover
    # The index's page column agrees with where each document really starts.
    starts = [reader.get_destination_page_number(item) + 1 for item in reader.outline[1:]]
    assert starts == [cover_pages + 1, cover_pages + 3, cover_pages + 4, cover_pages + 5]
    rows = re.findall(r"^\s*([1-4])\s.*?(\d+)\s*$", cover, flags=re.MULTILINE)
    assert [int(page) for _, page in rows] == starts
    # The documents follow the index, in order, with a page for those without a PDF.
    body = pages[cover_pages:]
    assert "kiểm tra thị trường dịp Tết" in body[0]
    assert "Báo cáo thị trường 2025" in body[2]
    assert "chưa có tệp PDF" in body[3]
    assert "bị hỏng hoặc được mã hóa" in body[4]


def test_xml_metadata_parses_with_one_element_per_document(bundle_file, users):
    data = export_xml(bundle_file, users["chuyenvien"])
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(data)
    assert root.tag == "CaseFile"
    assert root.findtext("FileCode") == f"000.00.19.H19.{bundle_file.year}.07.QLTM"
    assert root.findtext("FileNotation") == "07.QLTM"
    assert root.findtext("Maintenance") == "15 năm"
    assert root.find("Maintenance").get("years") == "15"
    assert root.findtext("DocTotal") == "4"
    assert root.findtext("StartDate") == "2025-12-20"
    documents = root.findall("Documents/Document")
    assert [d.findtext("CodeNotation") for d in documents] == [
        "12/UBND-KT",
        "35/BC-BCT",
        "41/TB-SCT",
        "42/GM-SCT",
    ]
    first = documents[0]
    assert first.findtext("OrganName") == "UBND tỉnh Đồng Nai"
    assert first.findtext("IssuedDate") == "2026-01-05"
    assert first.findtext("Subject") == "V/v triển khai kế hoạch kiểm tra thị trường năm 2026"
    assert first.findtext("Signer/FullName") == "Võ Văn Chánh"
    assert first.findtext("ArrivalNumber") == "7"
    assert first.findtext("ArrivalDate") == "2026-01-06"
    assert documents[1].findtext("PageAmount") == "1"  # counted in its PDF
    assert documents[3].find("PageAmount") is None  # unknown: damaged PDF, no page count
    assert documents[2].findtext("PageAmount") == "3"
    assert documents[1].findtext("LegacyId") == "488397-VBĐT"


def test_export_refuses_a_reader_without_clearance(make_document, users):
    secret = make_document("outgoing", "truongphong", subject="Phương án bảo vệ bí mật", secrecy=1)
    case_file = cf.open_case_file(
        users["truongphong"], {"code": "01.M", "title": "Hồ sơ mật", "retention": "01.01"}
    )
    case_file = cf.attach_document(users["truongphong"], case_file.pk, secret.pk)
    assert export_xml(case_file, users["truongphong"])
    with pytest.raises(Forbidden, match="độ mật"):
        export_pdf(case_file, users["chuyenvien"])  # same unit, but no clearance
