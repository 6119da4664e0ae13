"""Image stamps without a digital signature (an initial when the agency does not require one).

The stamp is a /Stamp annotation added as an incremental update. Validators (pyHanko's
difference analysis among them) treat an annotation added after a signature as a
suspicious change, so plain stamps are only allowed before the first signature, as
Decree 30 practice wants anyway (initials come before the leader signs).
"""

from __future__ import annotations

import datetime as dt
import io
import uuid

from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.sign.fields import enumerate_sig_fields

from .appearance import Appearance, AppearanceStamp, AppearanceStyle
from .errors import AlreadySignedError
from .pdf import open_pdf
from .placement import Placement, resolve


def stamp_pdf(
    pdf_bytes: bytes,
    appearance: Appearance,
    placement: Placement,
    *,
    note: str = "Ký nháy",
    now: dt.datetime | None = None,
) -> bytes:
    """Add a visible stamp annotation (no signature) to an unsigned PDF; return the new PDF."""
    writer = open_pdf(pdf_bytes)
    if any(True for _ in enumerate_sig_fields(writer.prev, filled_status=True)):
        raise AlreadySignedError()
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
