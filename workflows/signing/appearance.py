"""Visible signature appearances after Decree 30: initials, leader signature, seal, attachments."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from pyhanko.pdf_utils import layout
from pyhanko.pdf_utils.content import ResourceType
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.stamp import BaseStamp, BaseStampStyle

from .pdf_images import encode_image, image_xobject
from .stamp_font import PdfFontResource, stamp_font

VIETNAM_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SIGNING_TIME = "{signing_time}"

Align = Literal["left", "center", "right"]


def vietnam_iso(moment: dt.datetime) -> str:
    """Format a moment as ISO 8601 in Vietnam time, e.g. 2026-01-05T09:30:00+07:00."""
    return moment.astimezone(VIETNAM_TZ).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Appearance:
    """What a visible signature shows: text lines above and below an optional image.

    ``{signing_time}`` in a line becomes the signing time in ISO 8601, Vietnam time.
    """

    image: bytes | None = None
    lines_above: tuple[str, ...] = ()
    lines_below: tuple[str, ...] = ()
    font_size: float = 11.0
    bold: bool = True
    align: Align = "center"
    color: tuple[float, float, float] = (0.0, 0.0, 0.0)
    padding: float = 2.0

    def with_time(self, moment: dt.datetime) -> Appearance:
        """Return a copy whose lines carry the signing time."""
        stamp = vietnam_iso(moment)
        return Appearance(
            image=self.image,
            lines_above=tuple(line.replace(SIGNING_TIME, stamp) for line in self.lines_above),
            lines_below=tuple(line.replace(SIGNING_TIME, stamp) for line in self.lines_below),
            font_size=self.font_size,
            bold=self.bold,
            align=self.align,
            color=self.color,
            padding=self.padding,
        )


def leader_appearance(
    image: bytes | None,
    *,
    authority: str | None = None,
    title: str | None = None,
    name: str | None = None,
    font_size: float = 11.0,
) -> Appearance:
    """Leader signature: authority prefix and title above the handwritten image, name below."""
    above = tuple(line for line in (authority, title) if line)
    return Appearance(
        image=image, lines_above=above, lines_below=(name,) if name else (), font_size=font_size
    )


def initial_appearance(image: bytes) -> Appearance:
    """Initial (ký nháy): the small initial image alone."""
    return Appearance(image=image)


def seal_appearance(image: bytes) -> Appearance:
    """Agency seal: the red seal image alone."""
    return Appearance(image=image, padding=0.0)


def attachment_appearance(number: str, *, font_size: float = 10.0) -> Appearance:
    """Attachment signature: number and notation plus ISO 8601 signing time, no image."""
    return Appearance(
        lines_above=(number, SIGNING_TIME),
        font_size=font_size,
        bold=False,
        align="left",
        padding=1.0,
    )


@dataclass(frozen=True)
class AppearanceStyle(BaseStampStyle):
    """pyHanko stamp style drawing an Appearance into the signature widget."""

    appearance: Appearance = field(default_factory=Appearance)
    border_width: int = 0

    def create_stamp(
        self, writer: BasePdfFileWriter, box: layout.BoxConstraints, text_params: dict
    ) -> AppearanceStamp:
        """Return the stamp for one widget."""
        return AppearanceStamp(writer, self, box)


class AppearanceStamp(BaseStamp):
    """Render text lines and an image, fitted to the widget box."""

    style: AppearanceStyle

    def render(self) -> bytes:
        """Return the content stream, registering fonts and images as resources."""
        spec = self.style.appearance
        width, height = float(self.box.width), float(self.box.height)
        pad = spec.padding
        font = stamp_font(spec.bold)
        lines = [*spec.lines_above, *spec.lines_below]
        size = self._fit_font_size(lines, width - 2 * pad, height - 2 * pad, spec.image is not None)
        leading = size * 1.18
        ops: list[bytes] = [b"q"]
        resource = PdfFontResource(font)
        text_ops: list[bytes] = []
        r, g, b = spec.color

        def show(line: str, baseline: float) -> None:
            line_width = font.text_width(line, size)
            if spec.align == "left":
                x = pad
            elif spec.align == "right":
                x = width - pad - line_width
            else:
                x = (width - line_width) / 2
            text_ops.append(
                b"BT /F1 %.2f Tf %.3f %.3f %.3f rg %.2f %.2f Td %s Tj ET"
                % (size, r, g, b, x, baseline, resource.encode(line))
            )

        top = height - pad
        if spec.image is None and not spec.lines_below:
            # text only: centre the block vertically
            block = len(spec.lines_above) * leading
            top = height - max(pad, (height - block) / 2)
        for i, line in enumerate(spec.lines_above):
            show(line, top - size * 0.9 - i * leading)
        image_top = top - len(spec.lines_above) * leading
        bottom = pad
        for i, line in enumerate(reversed(spec.lines_below)):
            show(line, bottom + size * 0.25 + i * leading)
        image_bottom = bottom + len(spec.lines_below) * leading
        if spec.image is not None:
            ops.append(self._image_ops(spec.image, pad, image_bottom, width - pad, image_top))
        if text_ops:
            ops.extend(text_ops)
            font_ref = resource.embed(self._ensure_writer)
            self.set_resource(ResourceType.FONT, pdf_name("/F1"), font_ref)
        ops.append(b"Q")
        return b"\n".join(ops)

    def _fit_font_size(self, lines: list[str], width: float, height: float, image: bool) -> float:
        spec = self.style.appearance
        size = spec.font_size
        if not lines:
            return size
        font = stamp_font(spec.bold)
        widest = max(font.text_width(line, size) for line in lines)
        if widest > width > 0:
            size *= width / widest
        share = 0.55 if image else 1.0  # leave room for the handwritten image
        if len(lines) * size * 1.18 > height * share > 0:
            size = height * share / (len(lines) * 1.18)
        return max(size, 4.0)

    def _image_ops(self, data: bytes, x0: float, y0: float, x1: float, y1: float) -> bytes:
        image = encode_image(data)
        box_w, box_h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
        scale = min(box_w / image.width, box_h / image.height)
        w, h = image.width * scale, image.height * scale
        x, y = x0 + (box_w - w) / 2, y0 + (box_h - h) / 2
        self.set_resource(
            ResourceType.XOBJECT, pdf_name("/Im1"), image_xobject(self._ensure_writer, image)
        )
        return b"q %.3f 0 0 %.3f %.3f %.3f cm /Im1 Do Q" % (w, h, x, y)
