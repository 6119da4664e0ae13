"""Image stamps without a digital signature (an initial when the agency does not require one).

The stamp is a /Stamp annotation added as an incremental update: annotations are a change
pyHanko's difference analysis allows after approval signatures, so earlier signatures stay
valid, while the page content itself is never rewritten.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid

from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.generic import pdf_name

from .appearance import Appearance, AppearanceStamp, AppearanceStyle
from .integrity import check_signed_revisions
from .pdf import open_pdf
from .placement import Placement, resolve


def stamp_pdf(
    pdf_bytes: bytes,
    appearance: Appearance,
    placement: Placement,
    *,
    note: str = "Ký nháy",
    check_existing: bool = True,
    now: dt.datetime | None = None,
) -> bytes:
    """Add a visible stamp annotation (no signature) and return the updated PDF."""
    writer = open_pdf(pdf_bytes)
    if check_existing:
        check_signed_revisions(writer.prev)
    spot = resolve(placement, writer.prev, pdf_bytes)
    x0, y0, x1, y1 = spot.rect
    moment = now or dt.datetime.now(dt.UTC)
    stamp = AppearanceStamp(
        writer,
        AppearanceStyle(appearance=appearance.with_time(moment)),
        layout.BoxConstraints(width=x1 - x0, height=y1 - y0),
    )
    page_ref, _ = writer.find_page_for_modification(spot.page)
    annotation = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Annot"),
            pdf_name("/Subtype"): pdf_name("/Stamp"),
            pdf_name("/Rect"): generic.ArrayObject(generic.FloatObject(v) for v in spot.rect),
            pdf_name("/F"): generic.NumberObject(4 | 128),  # print, locked
            pdf_name("/P"): page_ref,
            pdf_name("/NM"): generic.TextStringObject(f"vanthu-{uuid.uuid4()}"),
            pdf_name("/Contents"): generic.TextStringObject(note),
            pdf_name("/M"): generic.pdf_date(moment),
            pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): stamp.register()}),
        }
    )
    writer.register_annotation(page_ref, writer.add_object(annotation))
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()
