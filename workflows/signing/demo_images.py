"""Draw demo appearance images: a handwritten-like signature, an initial and a round seal."""

from __future__ import annotations

import io
import math
import random

from PIL import Image, ImageDraw, ImageFont

from .fonts import font_path

BLUE = (20, 45, 160)
RED = (210, 20, 30)
_SUPERSAMPLE = 3


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _scribble(width: int, height: int, strokes: int, seed: int, line: int) -> bytes:
    s = _SUPERSAMPLE
    canvas = Image.new("RGBA", (width * s, height * s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    rng = random.Random(seed)  # noqa: S311 - drawing, not security
    for stroke in range(strokes):
        x0 = width * (0.08 + 0.84 * stroke / max(strokes, 1))
        span = width * (0.84 / max(strokes, 1)) * 1.4
        loops = rng.uniform(1.5, 3.0)
        amplitude = height * rng.uniform(0.22, 0.36)
        phase = rng.uniform(0, math.pi)
        points = []
        for i in range(160):
            t = i / 159
            x = x0 + span * t + amplitude * 0.35 * math.sin(2 * math.pi * loops * t + phase)
            y = height * 0.5 + amplitude * math.cos(2 * math.pi * loops * t + phase) * (1 - t / 2)
            points.append((x * s, y * s))
        draw.line(points, fill=(*BLUE, 255), width=line * s, joint="curve")
    # a final flourish under the name
    y = height * 0.8
    draw.line(
        [
            (width * 0.1 * s, y * s),
            (width * 0.55 * s, (y - 6) * s),
            (width * 0.92 * s, (y - 14) * s),
        ],
        fill=(*BLUE, 255),
        width=max(1, line - 1) * s,
        joint="curve",
    )
    return _png(canvas.resize((width, height), Image.Resampling.LANCZOS))


def make_signature_image(seed: int = 1, *, width: int = 480, height: int = 200) -> bytes:
    """Return a blue handwritten-like signature as a transparent PNG."""
    return _scribble(width, height, strokes=3, seed=seed, line=5)


def make_initial_image(seed: int = 2, *, width: int = 120, height: int = 50) -> bytes:
    """Return a small blue initial (about a quarter of a signature) as a transparent PNG."""
    return _scribble(width, height, strokes=1, seed=seed, line=3)


def _arc_text(
    canvas: Image.Image, text: str, center: float, radius: float, font: ImageFont.FreeTypeFont
) -> None:
    """Write text clockwise along the upper part of a circle."""
    widths = [font.getlength(ch) for ch in text]
    total = sum(widths) * 1.08
    sweep = min(total / radius, math.radians(300))
    angle = -math.pi / 2 - sweep / 2
    for ch, w in zip(text, widths, strict=True):
        step = sweep * (w * 1.08 / total)
        mid = angle + step / 2
        size = int(font.size * 2)
        glyph = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text(
            (size / 2, size / 2), ch, font=font, fill=(*RED, 255), anchor="mm"
        )
        glyph = glyph.rotate(-math.degrees(mid + math.pi / 2), resample=Image.Resampling.BICUBIC)
        x = center + radius * math.cos(mid) - size / 2
        y = center + radius * math.sin(mid) - size / 2
        canvas.alpha_composite(glyph, (int(x), int(y)))
        angle += step


def make_seal_image(agency: str = "SỞ NỘI VỤ TỈNH DEMO", *, size: int = 360) -> bytes:
    """Return a red round agency seal with the agency name on its ring as a transparent PNG."""
    s = _SUPERSAMPLE
    full = size * s
    canvas = Image.new("RGBA", (full, full), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    color = (*RED, 235)
    c = full / 2
    for radius, width in ((0.48, 0.022), (0.33, 0.012)):
        r = full * radius
        draw.ellipse((c - r, c - r, c + r, c + r), outline=color, width=int(full * width))
    font = ImageFont.truetype(str(font_path(bold=True)), int(full * 0.085))
    _arc_text(canvas, agency.upper(), c, full * 0.405, font)
    # five-pointed star in the centre
    outer, inner = full * 0.2, full * 0.08
    star = []
    for i in range(10):
        r = outer if i % 2 == 0 else inner
        a = -math.pi / 2 + i * math.pi / 5
        star.append((c + r * math.cos(a), c + r * math.sin(a)))
    draw.polygon(star, fill=color)
    return _png(canvas.resize((size, size), Image.Resampling.LANCZOS))
