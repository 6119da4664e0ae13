"""Build the stamp fonts shipped in workflows/signing/fonts/ from Liberation Serif.

pyHanko 0.38 writes TrueType glyph widths in font units into the PDF /W array, which PDF
reads as thousandths of an em. Liberation Serif has 2048 units per em, so stamps drawn with
it get doubled spacing. This script keeps the glyphs a Vietnamese stamp needs, drops
hinting, rescales the outlines and metrics to 1000 units per em and renames the family
(the SIL OFL reserves the names "Liberation" and "Tinos" for unmodified versions).

Usage: python tools/make_stamp_font.py [SOURCE_DIR] [OUTPUT_DIR]
Source: Debian package fonts-liberation2 (/usr/share/fonts/truetype/liberation2).
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont
from fontTools.ttLib.scaleUpem import scale_upem

SOURCE_DIR = Path("/usr/share/fonts/truetype/liberation2")
OUTPUT_DIR = Path(__file__).resolve().parent.parent / "workflows" / "signing" / "fonts"
FAMILY = "VanThu Stamp Serif"
PS_FAMILY = "VanThuStampSerif"
STYLES = {"Regular": "LiberationSerif-Regular.ttf", "Bold": "LiberationSerif-Bold.ttf"}

# Latin, Latin-1, Latin Extended-A/B (Ơ ơ Ư ư), combining marks, Vietnamese precomposed
# letters, general punctuation, the dong sign and the numero sign.
UNICODE_RANGES = [
    (0x0020, 0x007E),
    (0x00A0, 0x00FF),
    (0x0100, 0x024F),
    (0x0300, 0x036F),
    (0x1EA0, 0x1EF9),
    (0x2010, 0x2044),
    (0x20AB, 0x20AC),
    (0x2116, 0x2116),
]


def build(style: str, source: Path, output: Path) -> Path:
    """Subset, rescale and rename one style of the font."""
    font = TTFont(source)
    options = subset.Options()
    options.hinting = False
    options.layout_features = ["kern", "liga", "ccmp", "mark", "mkmk"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options=options)
    subsetter.populate(unicodes=[cp for lo, hi in UNICODE_RANGES for cp in range(lo, hi + 1)])
    subsetter.subset(font)
    scale_upem(font, 1000)
    rename(font, style)
    target = output / f"{PS_FAMILY}-{style}.ttf"
    font.save(target)
    return target


def rename(font: TTFont, style: str) -> None:
    """Give the derivative its own names, as the OFL requires for modified versions."""
    names = {
        1: FAMILY,
        3: f"{PS_FAMILY}-{style};derived from Liberation Serif 2",
        4: f"{FAMILY} {style}",
        6: f"{PS_FAMILY}-{style}",
        16: FAMILY,
    }
    table = font["name"]
    for record in list(table.names):
        if record.nameID in (1, 3, 4, 6, 16, 17, 21, 22):
            table.removeNames(nameID=record.nameID)
    for name_id, value in names.items():
        table.setName(value, name_id, 3, 1, 0x409)
        table.setName(value, name_id, 1, 0, 0)
    table.setName(style, 2, 3, 1, 0x409)


def main(argv: list[str]) -> None:
    """Build every style."""
    source_dir = Path(argv[1]) if len(argv) > 1 else SOURCE_DIR
    output_dir = Path(argv[2]) if len(argv) > 2 else OUTPUT_DIR
    output_dir.mkdir(parents=True, exist_ok=True)
    for style, file_name in STYLES.items():
        target = build(style, source_dir / file_name, output_dir)
        print(f"{target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv)
