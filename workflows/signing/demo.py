"""Demo seed material: a PKI, appearance images, a draft and the same document issued."""

from __future__ import annotations

from dataclasses import dataclass

from .appearance import initial_appearance, leader_appearance, seal_appearance
from .demo_images import make_initial_image, make_seal_image, make_signature_image
from .demo_pdf import SampleDocument, make_sample_pdf
from .demo_pki import DemoPki, make_demo_pki
from .identity import Pkcs12Identity
from .pdf import sign_pdf

DEMO_PASSPHRASE = "vanthu-demo"  # noqa: S105 - demo-only keys, published on purpose


@dataclass(frozen=True)
class DemoSigning:
    """Everything the demo seed stores for signing (PKCS#12 files use DEMO_PASSPHRASE)."""

    pki: DemoPki
    leader_p12: bytes
    deputy_p12: bytes
    seal_p12: bytes
    signature_png: bytes
    initial_png: bytes
    seal_png: bytes
    draft_pdf: bytes
    issued_pdf: bytes


def make_demo_signing(document: SampleDocument | None = None) -> DemoSigning:
    """Build the demo PKI and an issued decision: initialed, signed by the deputy, sealed."""
    pki = make_demo_pki()
    secret = DEMO_PASSPHRASE.encode()
    p12 = {who: getattr(pki, who).pkcs12(secret) for who in ("leader", "deputy", "seal")}
    signature, initial, seal = make_signature_image(), make_initial_image(), make_seal_image()
    draft = make_sample_pdf(document)
    leader, deputy, agency = (
        Pkcs12Identity.from_pkcs12(p12[who], DEMO_PASSPHRASE)
        for who in ("leader", "deputy", "seal")
    )
    issued = sign_pdf(draft, leader, kind="initial", appearance=initial_appearance(initial))
    issued = sign_pdf(issued, deputy, kind="sign", appearance=leader_appearance(signature))
    issued = sign_pdf(issued, agency, kind="seal", appearance=seal_appearance(seal))
    return DemoSigning(
        pki, p12["leader"], p12["deputy"], p12["seal"], signature, initial, seal, draft, issued
    )
