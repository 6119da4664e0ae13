"""Stamps render: Vietnamese text is extractable and correctly spaced, images show in colour."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from workflows.signing import (
    AlreadySignedError,
    Box,
    attachment_appearance,
    initial_appearance,
    leader_appearance,
    seal_appearance,
    sign_pdf,
    stamp_pdf,
    verify_pdf,
)
from workflows.signing.demo_pdf import SampleDocument, make_sample_pdf
from workflows.signing.stamp_font import stamp_font

LEADER_BOX = Box(page=0, x0=300, y0=150, x1=520, y1=280)
A4_HEIGHT = 841.89


@pytest.fixture(scope="module")
def blank_pdf() -> bytes:
    """A document whose body does not contain the stamp strings."""
    return make_sample_pdf(
        SampleDocument(authority=None, title="CHUYÊN VIÊN", signer="Người Soạn", paragraphs=1)
    )


@pytest.fixture(scope="module")
def stamped(blank_pdf, leader, agency, images) -> bytes:
    signed = sign_pdf(
        blank_pdf,
        leader,
        kind="sign",
        appearance=leader_appearance(
            images.signature, authority="KT. GIÁM ĐỐC", title="PHÓ GIÁM ĐỐC", name="Nguyễn Văn An"
        ),
        placement=LEADER_BOX,
    )
    return sign_pdf(signed, agency, kind="seal", appearance=seal_appearance(images.seal))


def _text_in(pdf: bytes, tmp_path: Path, box: Box, *extra: str) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    x, y = box.x0, A4_HEIGHT - box.y1
    return subprocess.run(
        [
            "pdftotext",
            "-f",
            "1",
            "-l",
            "1",
            "-x",
            str(int(x)),
            "-y",
            str(int(y)),
            "-W",
            str(int(box.x1 - box.x0)),
            "-H",
            str(int(box.y1 - box.y0)),
            *extra,
            str(path),
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_leader_stamp_text_is_extractable(stamped, tmp_path):
    text = _text_in(stamped, tmp_path, LEADER_BOX)
    assert "KT. GIÁM ĐỐC" in text
    assert "PHÓ GIÁM ĐỐC" in text
    assert "Nguyễn Văn An" in text


def test_stamp_glyph_spacing_matches_font_metrics(stamped, tmp_path):
    """A font written with 2048-unit widths would print the words twice as wide."""
    xml = _text_in(stamped, tmp_path, LEADER_BOX, "-bbox")
    import re

    words = {
        m[4]: float(m[2]) - float(m[0])
        for m in re.findall(
            r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]+)<', xml
        )
    }
    expected = stamp_font(bold=True).text_width("Nguyễn", 11)
    assert words["Nguyễn"] == pytest.approx(expected, rel=0.2)


def test_stamps_render_in_colour(stamped, tmp_path):
    path = tmp_path / "doc.pdf"
    path.write_bytes(stamped)
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "72",
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(path),
            str(tmp_path / "page"),
        ],
        check=True,
    )
    with Image.open(tmp_path / "page.png") as page:
        region = page.convert("RGB").crop(
            (
                int(LEADER_BOX.x0) - 60,
                int(A4_HEIGHT - LEADER_BOX.y1),
                int(LEADER_BOX.x1),
                int(A4_HEIGHT - LEADER_BOX.y0),
            )
        )
        data = region.tobytes()
    pixels = [tuple(data[i : i + 3]) for i in range(0, len(data), 3)]
    blue = sum(1 for r, g, b in pixels if b > 120 and r < 90 and g < 110)
    red = sum(1 for r, g, b in pixels if r > 170 and g < 90 and b < 90)
    dark = sum(1 for r, g, b in pixels if r < 60 and g < 60 and b < 60)
    assert blue > 200, "handwritten signature image missing"
    assert red > 200, "seal image missing"
    assert dark > 100, "stamp text missing"


def test_attachment_text_has_number_and_vietnam_time(blank_pdf, agency, tmp_path):
    signed = sign_pdf(
        blank_pdf, agency, kind="attachment", appearance=attachment_appearance("15/QĐ-SNV")
    )
    text = _text_in(signed, tmp_path, Box(0, 595 - 200, 842 - 50, 595, 842))
    assert "15/QĐ-SNV" in text
    [result] = verify_pdf(signed)
    assert result["signing_time"] in text
    assert result["signing_time"].endswith("+07:00")


def test_plain_initial_stamp_before_signing(blank_pdf, leader, images, ca_pem, tmp_path):
    box = Box(0, 450, 60, 510, 90)
    initialed = stamp_pdf(blank_pdf, initial_appearance(images.initial), box)
    assert initialed.startswith(blank_pdf)
    path = tmp_path / "initialed.pdf"
    path.write_bytes(initialed)
    subprocess.run(
        ["pdftoppm", "-r", "72", "-png", "-singlefile", str(path), str(tmp_path / "p")], check=True
    )
    with Image.open(tmp_path / "p.png") as page:
        corner = page.convert("RGB").crop((450, int(A4_HEIGHT - 90), 510, int(A4_HEIGHT - 60)))
        assert min(corner.getchannel("R").tobytes()) < 150, "initial image not drawn"
    signed = sign_pdf(
        initialed,
        leader,
        kind="sign",
        appearance=leader_appearance(images.signature),
        placement=LEADER_BOX,
    )
    [result] = verify_pdf(signed, [ca_pem])
    assert result["trusted"] and result["modifications_ok"]
    with pytest.raises(AlreadySignedError):
        stamp_pdf(signed, initial_appearance(images.initial), box)
