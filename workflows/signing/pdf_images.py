"""Turn appearance PNGs into PDF image XObjects once per process, then reuse the encoded data."""

from __future__ import annotations

import hashlib
import io
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import BasePdfFileWriter

from .errors import SigningError

MAX_SIDE = 900  # pixels; enough for a 6 cm signature at 380 dpi


@dataclass(frozen=True)
class EncodedImage:
    """Flate-compressed RGB samples plus an optional alpha mask."""

    width: int
    height: int
    rgb: bytes
    alpha: bytes | None

    @property
    def aspect(self) -> float:
        """Return width / height."""
        return self.width / self.height


_cache: OrderedDict[bytes, EncodedImage] = OrderedDict()
_lock = threading.Lock()


def encode_image(data: bytes) -> EncodedImage:
    """Decode an image file (PNG, JPEG...) into cached PDF-ready samples."""
    key = hashlib.sha256(data).digest()
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    try:
        image: Image.Image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise SigningError("Ảnh chữ ký/con dấu không đọc được.") from exc
    image = image.convert("RGBA")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    alpha_band = image.getchannel("A")
    opaque = alpha_band.getextrema() == (255, 255)
    encoded = EncodedImage(
        width=image.width,
        height=image.height,
        rgb=zlib.compress(image.convert("RGB").tobytes(), 6),
        alpha=None if opaque else zlib.compress(alpha_band.tobytes(), 6),
    )
    with _lock:
        _cache[key] = encoded
        while len(_cache) > 64:
            _cache.popitem(last=False)
    return encoded


def image_xobject(writer: BasePdfFileWriter, image: EncodedImage) -> generic.IndirectObject:
    """Write an image XObject (with its soft mask) into a document."""

    def stream(data: bytes, color_space: str) -> generic.StreamObject:
        return generic.StreamObject(
            {
                pdf_name("/Type"): pdf_name("/XObject"),
                pdf_name("/Subtype"): pdf_name("/Image"),
                pdf_name("/Width"): generic.NumberObject(image.width),
                pdf_name("/Height"): generic.NumberObject(image.height),
                pdf_name("/ColorSpace"): pdf_name(color_space),
                pdf_name("/BitsPerComponent"): generic.NumberObject(8),
                pdf_name("/Filter"): pdf_name("/FlateDecode"),
            },
            encoded_data=data,
        )

    main = stream(image.rgb, "/DeviceRGB")
    if image.alpha is not None:
        main[pdf_name("/SMask")] = writer.add_object(stream(image.alpha, "/DeviceGray"))
    return writer.add_object(main)
