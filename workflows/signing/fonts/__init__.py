"""Locate the shipped stamp fonts (Liberation Serif rescaled to 1000 units per em)."""

from __future__ import annotations

from pathlib import Path

FONT_DIR = Path(__file__).resolve().parent


def font_path(*, bold: bool = False) -> Path:
    """Return the path of the regular or bold stamp font."""
    return FONT_DIR / f"VanThuStampSerif-{'Bold' if bold else 'Regular'}.ttf"
