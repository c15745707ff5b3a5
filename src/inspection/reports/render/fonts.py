"""The fonts every rendered report uses: Noto Sans bundled with the project, never the machine's.

A PDF must look the same on the laptop that built it and on the server, and must have every
Vietnamese letter: fonts found on the machine give neither guarantee, so Typst and vl-convert
are pointed at `reports/fonts/` only (OFL-1.1, `reports/fonts/OFL.txt`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import typst

FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"
FAMILY = "Noto Sans"


@cache
def typst_fonts() -> typst.Fonts:
    """The bundled fonts only: neither the machine's nor the ones compiled into Typst.

    Scanned once per process; Typst's embedded fonts (Libertinus, New Computer Modern) are left
    out too, so a glyph missing from Noto Sans shows as missing instead of in another face.
    """
    return typst.Fonts(
        include_system_fonts=False, include_embedded_fonts=False, font_paths=[str(FONT_DIR)]
    )
