"""Realistic demo documents in every state, made through the same operations as users."""

from __future__ import annotations

import datetime as dt
import io
import logging

from werkzeug.datastructures import FileStorage

from models.document import Document
from models.document_type import DocumentType
from models.organization import Unit
from models.user import User
from workflows import engine
from workflows.document import create_draft, register_incoming
from workflows.signing.demo_pdf import SampleDocument, make_sample_pdf

log = logging.getLogger(__name__)

INCOMING = [
    # issuer, notation, type, subject, days ago, urgency, what happened
    (
        "UBND tỉnh Đồng Nai",
        "4512/UBND-KTN",
        "Công văn",
        "V/v tăng cường kiểm tra, kiểm soát thị trường dịp cuối năm và Tết Nguyên đán",
        20,
        1,
        "completed",
    ),
    (
        "Bộ Công Thương",
        "1287/BCT-TTTN",
        "Công văn",
        "V/v triển khai Chương trình bình ổn thị trường năm 2026",
        12,
        0,
        "processing_overdue",
    ),
    (
        "Sở Tài chính tỉnh Đồng Nai",
        "356/STC-QLNS",
        "Công văn",
        "V/v góp ý dự toán ngân sách năm 2027 của các sở, ngành",
        6,
        0,
        "processing",
    ),
    (
        "UBND tỉnh Đồng Nai",
        "92/KH-UBND",
        "Kế hoạch",
        "Kế hoạch phát triển thương mại điện tử tỉnh Đồng Nai giai đoạn 2026-2030",
        3,
        0,
        "presented_overdue",
    ),
    (
        "Cục Quản lý thị trường tỉnh Đồng Nai",
        "211/QLTT-NV",
        "Công văn",
        "V/v phối hợp kiểm tra hàng hóa nhập lậu trên địa bàn tỉnh",
        1,
        2,
        "presented",
    ),
    (
        "Sở Nội vụ tỉnh Đồng Nai",
        "18/TB-SNV",
        "Thông báo",
        "Thông báo lịch thi nâng ngạch công chức năm 2026",
        0,
        0,
        "registered",
    ),
]

OUTGOING = [
    ("Công văn", "V/v báo cáo tình hình hoạt động các chợ đầu mối năm 2026", "draft"),
    ("Kế hoạch", "Kế hoạch kiểm tra an toàn thực phẩm thuộc ngành Công Thương năm 2027", "review"),
    ("Quyết định", "Quyết định thành lập Đoàn kiểm tra liên ngành về an toàn điện", "signing"),
]


def _pdf(notation: str, doc_type: str, subject: str, signer: str, title: str) -> FileStorage:
    sample = SampleDocument(
        agency="SỞ CÔNG THƯƠNG",
        parent="UBND TỈNH ĐỒNG NAI",
        number=notation,
        place_date="Đồng Nai, ngày 18 tháng 11 năm 2026",
        doc_type=doc_type.upper(),
        summary=subject,
        authority=None,
        title=title,
        signer=signer,
        paragraphs=3,
    )
    name = (notation or "du-thao").replace("/", "_") + ".pdf"
    return FileStorage(stream=io.BytesIO(make_sample_pdf(sample)), filename=name)


def seed_demo_documents() -> None:
    """Create demo incoming and outgoing documents unless some already exist."""
    if Document.objects(migrated=False).first() is not None:
        return
    users = {u.username: u for u in User.objects}
    units = {u.abbreviation: u for u in Unit.objects}
    types = {t.name: t for t in DocumentType.objects}
    now = dt.datetime.now(dt.UTC)
    for issuer, notation, type_name, subject, days, urgency, outcome in INCOMING:
        data = {
            "doc_type": str(types[type_name].pk),
            "notation": notation,
            "issuer": issuer,
            "issued_on": (now - dt.timedelta(days=days + 1)).date().isoformat(),
            "subject": subject,
            "urgency": str(urgency),
            "secrecy": "0",
            "channel": "edxml",
        }
        doc = register_incoming(
            users["vanthu"], data, _pdf(notation, type_name, subject, "Nguyễn Văn B", "CHỦ TỊCH")
        )
        when = now - dt.timedelta(days=days)
        Document.objects(pk=doc.pk).update(set__created_at=when, set__arrival_at=when)
        if outcome == "registered":
            continue
        engine.transition(
            doc.pk, "present", users["vanthu"], {"leader": str(users["giamdoc"].pk)}, now=when
        )
        if outcome.startswith("presented"):
            if outcome.endswith("overdue"):
                Document.objects(pk=doc.pk).update(set__due_at=when + dt.timedelta(hours=8))
            continue
        deadline = when + dt.timedelta(days=5 if outcome == "processing_overdue" else 14)
        assignees = [
            {"role": "lead", "unit": str(units["QLTM"].pk), "deadline": deadline.isoformat()},
            {"role": "coordinate", "unit": str(units["KHTC"].pk), "deadline": deadline.isoformat()},
            {"role": "info", "unit": str(units["VP"].pk)},
        ]
        engine.transition(
            doc.pk,
            "assign",
            users["giamdoc"],
            {"assignees": assignees, "comment": "Giao Phòng QLTM chủ trì."},
            now=when + dt.timedelta(hours=2),
        )
        if outcome == "completed":
            for username in ("tp.khtc", "truongphong"):
                engine.transition(
                    doc.pk,
                    "complete",
                    users[username],
                    {"report": "Đã triển khai, báo cáo kết quả."},
                    now=when + dt.timedelta(days=3),
                )
    for type_name, subject, stop in OUTGOING:
        data = {
            "doc_type": str(types[type_name].pk),
            "subject": subject,
            "signer": str(users["giamdoc"].pk),
            "recipients": "- Như trên;\n- Lưu: VT, QLTM.",
        }
        doc = create_draft(
            users["chuyenvien"], data, _pdf("", type_name, subject, "Nguyễn Văn An", "GIÁM ĐỐC")
        )
        if stop == "draft":
            continue
        engine.transition(doc.pk, "submit", users["chuyenvien"], {"comment": "Kính trình."})
        if stop == "signing":
            engine.transition(doc.pk, "circuit_approve", users["truongphong"])
    _seed_issued_document(users, types)
    log.info("demo documents ready")


def _seed_issued_document(users: dict[str, User], types: dict[str, DocumentType]) -> None:
    """An issued decision whose PDF carries the director's signature and the agency seal."""
    from models.document import HistoryEntry
    from models.signature import SigningIdentity
    from workflows import register_book
    from workflows.signing_demo import sign_demo_document

    if not SigningIdentity.objects(owner=users["giamdoc"]).first():
        return  # the demo PKI is seeded outside tests only
    data = {
        "doc_type": str(types["Quyết định"].pk),
        "signer": str(users["giamdoc"].pk),
        "subject": "Quyết định ban hành Quy chế công tác văn thư, lưu trữ của Sở Công Thương",
        "recipients": "- Như Điều 3;\n- Lưu: VT, VP.",
    }
    doc = create_draft(users["chuyenvien"], data, None)
    register_book.assign_number(doc, actor_id=str(users["vanthu"].pk))
    doc.save()
    doc = sign_demo_document(doc, users["vanthu"])
    steps = [
        ("chuyenvien", "submit", "Trình duyệt"),
        ("truongphong", "circuit_approve", "Ký nháy"),
        ("giamdoc", "sign", "Ký ban hành"),
        ("vanthu", "number", "Cấp số, ngày văn bản"),
        ("vanthu", "seal", "Đóng dấu và phát hành"),
    ]
    doc.reload()
    doc.history.extend(
        HistoryEntry(
            actor_id=str(users[u].pk), actor_name=users[u].full_name, action=code, label=label
        )
        for u, code, label in steps
    )
    if doc.circuit is not None:
        doc.circuit.status = "done"
        for step in doc.circuit.steps:
            step.status, step.done_by = "done", list(step.user_ids)
    doc.state, doc.closed, doc.pending_user_ids, doc.due_at = "issued", True, [], None
    doc.save()


def seed_bulk_documents(count: int) -> int:
    """Insert `count` varied incoming documents quickly (benchmarks); return how many."""
    import random

    rng = random.Random(20261121)  # noqa: S311 - not security
    users = list(User.objects(active=True))
    units = list(Unit.objects)
    types = list(DocumentType.objects)
    definition_version = 1
    issuers = [
        "UBND tỉnh Đồng Nai",
        "Bộ Công Thương",
        "Sở Tài chính",
        "Sở Y tế",
        "Cục Quản lý thị trường",
        "UBND TP. Biên Hòa",
        "Sở Kế hoạch và Đầu tư",
    ]
    topics = [
        "kiểm tra thị trường",
        "an toàn thực phẩm",
        "bình ổn giá",
        "xúc tiến thương mại",
        "quản lý chợ",
        "an toàn điện",
        "khuyến công",
        "thương mại điện tử",
    ]
    now = dt.datetime.now(dt.UTC)
    collection = Document._get_collection()
    batch = []
    for i in range(count):
        created = now - dt.timedelta(days=rng.randint(0, 360), minutes=rng.randint(0, 1440))
        unit = rng.choice(units)
        handler = rng.choice(users)
        state = rng.choice(["registered", "presented", "processing", "processing", "completed"])
        closed = state == "completed"
        doc = Document(
            direction="incoming",
            doc_type=rng.choice(types),
            issuer=rng.choice(issuers),
            notation=f"{i + 1}/{rng.choice(['UBND', 'BCT', 'STC'])}-{rng.choice(['KT', 'VP'])}",
            subject=f"V/v {rng.choice(topics)} năm 2026 (văn bản số {i + 1})",
            arrival_number=100_000 + i,
            arrival_at=created,
            registered_year=created.year,
            state=state,
            workflow_code="incoming",
            workflow_version=definition_version,
            closed=closed,
            created_at=created,
            updated_at=created,
            due_at=None if closed else created + dt.timedelta(days=rng.randint(1, 30)),
            pending_user_ids=[] if closed else [str(handler.pk)],
            participant_ids=[str(handler.pk)],
            visible_user_ids=[str(handler.pk)],
            visible_unit_ids=[str(unit.pk)],
            owner_unit_id=str(unit.pk),
        )
        doc.doc_type_name = doc.doc_type.name
        batch.append(doc.to_mongo().to_dict())
        if len(batch) == 1000:
            collection.insert_many(batch)
            batch = []
    if batch:
        collection.insert_many(batch)
    return count
