"""Benchmark visible PDF signing in a warm process.

Targets (issue 5): <= 60 ms per visible signature on a 1-page PDF, <= 5 s for a batch of
50 documents. Run from the repository root:

    PYTHONPATH=. .venv/bin/python bench/signing_speed.py [--runs 40]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.stamp import TextStampStyle

from workflows.signing import (
    Box,
    NearText,
    SignRequest,
    leader_appearance,
    load_pkcs12_identity,
    seal_appearance,
    sign_pdf,
    sign_pdfs,
    warm_up,
)
from workflows.signing.demo_images import make_seal_image, make_signature_image
from workflows.signing.demo_pdf import make_sample_pdf
from workflows.signing.demo_pki import make_demo_pki
from workflows.signing.fonts import font_path

PASS = b"bench"


def measure(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Return p50 and p95 in milliseconds."""
    fn()  # warm
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def main() -> None:
    """Run every scenario and print a table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    runs = parser.parse_args().runs

    pki = make_demo_pki()
    deputy_p12, seal_p12 = pki.deputy.pkcs12(PASS), pki.seal.pkcs12(PASS)
    one_page = make_sample_pdf()
    big = make_sample_pdf(filler_mb=5)
    signature, seal = make_signature_image(), make_seal_image()
    appearance = leader_appearance(
        signature, authority="KT. GIÁM ĐỐC", title="PHÓ GIÁM ĐỐC", name="Trần Thị Bình"
    )
    box = Box(0, 320, 150, 520, 280)
    warm_up()

    def visible(pdf: bytes, placement: Box | NearText) -> Callable[[], bytes]:
        def run() -> bytes:
            identity = load_pkcs12_identity(deputy_p12, PASS)  # cached after the first call
            return sign_pdf(pdf, identity, appearance=appearance, placement=placement)

        return run

    signed_once = visible(one_page, NearText("Trần Thị Bình"))()

    def seal_after_sign() -> bytes:
        identity = load_pkcs12_identity(seal_p12, PASS)
        return sign_pdf(signed_once, identity, kind="seal", appearance=seal_appearance(seal))

    style = TextStampStyle(
        stamp_text="KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC\n%(signer)s",
        text_box_style=TextBoxStyle(
            font=GlyphAccumulatorFactory(str(font_path(bold=True)), font_size=11), font_size=11
        ),
    )

    def naive() -> bytes:
        signer = signers.SimpleSigner.load_pkcs12_data(deputy_p12, [], passphrase=PASS)
        pdf_signer = signers.PdfSigner(
            signers.PdfSignatureMetadata(field_name="sig"),
            signer,
            stamp_style=style,
            new_field_spec=fields.SigFieldSpec("sig", box=(320, 150, 520, 280)),
        )
        return pdf_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(one_page))).getvalue()

    rows = [
        ("naive pyHanko, 1 page (key re-parsed, size by dry run)", measure(naive, runs)),
        ("1 page, fixed box", measure(visible(one_page, box), runs)),
        (
            "1 page, box found by signer's name",
            measure(visible(one_page, NearText("Trần Thị Bình")), runs),
        ),
        ("1 page, seal over an existing signature", measure(seal_after_sign, runs)),
        (f"{len(big) / 1e6:.1f} MB, fixed box", measure(visible(big, box), max(5, runs // 4))),
    ]
    print(f"{'scenario':60} {'p50 ms':>8} {'p95 ms':>8}")
    for name, (p50, p95) in rows:
        print(f"{name:60} {p50:8.1f} {p95:8.1f}")

    identity = load_pkcs12_identity(deputy_p12, PASS)
    batch = [
        SignRequest(one_page, appearance=appearance, placement=NearText("Trần Thị Bình"))
        for _ in range(50)
    ]
    start = time.perf_counter()
    results = sign_pdfs(batch, identity)
    elapsed = time.perf_counter() - start
    assert all(isinstance(r, bytes) for r in results)
    print(f"{'batch of 50 one-page documents (name search), total s':60} {elapsed:8.2f}")


if __name__ == "__main__":
    main()
