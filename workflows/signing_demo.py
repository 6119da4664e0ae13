"""Demo signing: a demo PKI, identities with a known PIN, and issued documents signed with them."""

from __future__ import annotations

import datetime as dt
import io
import logging
from typing import Any

from models.audit import utcnow
from models.document import Document
from models.organization import Agency
from models.signature import SigningIdentity
from models.user import User
from workflows.errors import ValidationFailed
from workflows.signing_appearance import head_title, title_of
from workflows.signing_identity import create_pkcs12_identity
from workflows.signing_run import attach_pdf, sign_directly
from workflows.signing_verify import add_trust_root

log = logging.getLogger(__name__)

DEMO_SIGNING_PIN = "123456"


def seed_demo_signing() -> None:
    """Create the demo PKI, identities (giamdoc, phogiamdoc, agency seal), images, trust root."""
    from models.role import Role
    from workflows.signing import demo_images
    from workflows.signing.demo import DEMO_PASSPHRASE
    from workflows.signing.demo_pki import make_demo_pki

    if SigningIdentity.objects(agency_seal=True).first() is not None:
        return
    users = {u.username: u for u in User.objects(username__in=["giamdoc", "phogiamdoc"])}
    if len(users) != 2:
        log.warning("demo signing: demo users missing, nothing seeded")
        return
    pki = make_demo_pki()
    secret = DEMO_PASSPHRASE.encode()
    add_trust_root(pki.ca.cert_pem, "VănThư Demo Root CA (chỉ dùng chạy thử)")
    for username, who, seed in (("giamdoc", pki.leader, 1), ("phogiamdoc", pki.deputy, 7)):
        user = users[username]
        create_pkcs12_identity(
            who.pkcs12(secret), DEMO_PASSPHRASE, owner=user, pin=DEMO_SIGNING_PIN
        )
        if not user.signature_image:
            user.signature_image.put(io.BytesIO(demo_images.make_signature_image(seed)))
            user.initial_image.put(io.BytesIO(demo_images.make_initial_image(seed + 1)))
            user.save()
    agency = Agency.current()
    seal = _demo_agency_seal(pki, agency.name if agency else "Cơ quan Demo")
    create_pkcs12_identity(
        seal.pkcs12(secret),
        DEMO_PASSPHRASE,
        agency_seal=True,
        label="Chữ ký số cơ quan (demo)",
        pin=DEMO_SIGNING_PIN,
        seal_image=demo_images.make_seal_image((agency.name if agency else "CƠ QUAN").upper()),
    )
    admin_role = Role.objects(code="quan_tri").first()
    if admin_role is not None and "signing.manage" not in admin_role.permissions:
        admin_role.update(add_to_set__permissions="signing.manage")
    log.info("demo signing identities ready (PIN %s)", DEMO_SIGNING_PIN)


def _demo_agency_seal(pki: Any, agency_name: str) -> Any:
    """Issue the agency seal certificate in the agency's own name from the demo CA."""
    from workflows.signing import demo_pki

    key = demo_pki._new_key(2048)
    start = utcnow() - dt.timedelta(days=30)
    cert = demo_pki._issue(
        subject=demo_pki._name(agency_name, agency_name),
        key=key,
        issuer=pki.ca,
        not_before=start,
        not_after=start + dt.timedelta(days=395),
    )
    return demo_pki.TestIdentity(agency_name, key, cert, (pki.ca.cert,))


def sign_demo_document(doc: Document, clerk: User | None = None) -> Document:
    """Give an issued demo document a PDF signed by its signer and sealed by the agency.

    Signs directly (no job, no transition): the seed creates documents already issued.
    """
    from workflows.signing.demo_pdf import SampleDocument, make_sample_pdf

    signer = doc.signer or User.objects(username="giamdoc").first()
    clerk = clerk or User.objects(username="vanthu").first()
    if signer is None or clerk is None:
        raise ValidationFailed("Thiếu người ký hoặc văn thư để ký văn bản mẫu.")
    if doc.current_pdf is None:
        agency = Agency.current()
        sample = SampleDocument(
            agency=(agency.name if agency else "CƠ QUAN").upper(),
            parent=(agency.parent_name if agency and agency.parent_name else "").upper(),
            number=doc.notation or "…/…",
            doc_type=(doc.doc_type_name or "Công văn").upper(),
            summary=doc.subject[:90],
            authority=f"{doc.signer_authority} {head_title()}" if doc.signer_authority else None,
            title=(doc.signer_title or title_of(signer)).upper(),
            signer=doc.signer_name or signer.full_name,
        )
        attach_pdf(
            doc,
            make_sample_pdf(sample),
            f"{(doc.notation or 'van-ban').replace('/', '-')}.pdf",
            signer,
        )
    for kind, actor in (("sign", signer), ("seal", clerk)):
        sign_directly(doc, kind, actor)
    doc.reload()
    return doc
