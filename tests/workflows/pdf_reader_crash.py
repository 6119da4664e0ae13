"""A text-extraction job that dies like a PDF reader crashing on one file.

Run in TextWorker's worker processes, so it lives in an importable module of its own.
"""

from __future__ import annotations

import os

from workflows.legacy import files

MARKER = b"%CRASH-THE-READER"


def crash_on_marker(path: str, options: files.TextOptions) -> files.PdfText:
    """Kill the process (as a segfault would) on a file holding MARKER, else extract."""
    with open(path, "rb") as pdf:
        if MARKER in pdf.read():
            os._exit(70)
    return files._extract_and_remove(path, options)
