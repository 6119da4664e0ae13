"""Message catalogs: compiled from the .po files in the repo at start-up."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask

SOURCE = Path(__file__).with_name("translations")


def compile_catalogs(app: Flask) -> str:
    """Compile every .po under views/translations into DATA_DIR; return that directory."""
    target = Path(app.config["DATA_DIR"]) / "translations"
    for po_path in SOURCE.rglob("*.po"):
        mo_path = target / po_path.relative_to(SOURCE).with_suffix(".mo")
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as src:
            catalog = read_po(src)
        with mo_path.open("wb") as dst:
            write_mo(dst, catalog)
    return str(target)
