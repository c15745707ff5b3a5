"""Bar charts as Vega-Lite specs (for a web dashboard) and as SVG (for the PDF).

Horizontal bars: the categories are unit and field names, often long ("Ủy ban nhân dân xã La
Hiên"), and read better down the side than slanted under columns. The bars keep the order the
chart gives, and carry their value at the end.

The SVG comes from `vl-convert-python` (Vega in an embedded JS engine, no browser, no system
libraries). Its text stays text (`<text font-family="Noto Sans">`): Typst renders SVG text with
its own fonts, which are the bundled ones, so the chart's Vietnamese labels come out in the same
embedded Noto Sans as the page (tests check `pdffonts` and `pdftotext`). vl-convert measures
text to lay out the axes, so it is given the bundled fonts too.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import vl_convert

from inspection.reports.document import Chart
from inspection.reports.render.cells import nfc
from inspection.reports.render.fonts import FAMILY, FONT_DIR

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
# px of the whole chart, labels included (`autosize: fit-x`): the PDF scales each chart to its
# text width, so charts of one width print their text at one size whatever their labels' length
# (a chart of short unit names was printed a third larger than one of long field names).
WIDTH = 680
BAR_STEP = 22  # px per category
# d3-format has no Vietnamese locale: "1.234,5" as Vietnamese writes numbers.
VI_FORMAT_LOCALE = {"decimal": ",", "thousands": ".", "grouping": [3], "currency": ["", " ₫"]}

_fonts_lock = threading.Lock()
_fonts_registered = False


def _register_fonts() -> None:
    # Process-wide in vl-convert and not free (it rescans the folder): once.
    global _fonts_registered  # noqa: PLW0603 - a process-wide fact, as vl-convert's own state is
    with _fonts_lock:
        if not _fonts_registered:
            vl_convert.register_font_directory(str(FONT_DIR))
            _fonts_registered = True


def spec(chart: Chart) -> dict[str, Any]:
    """The chart as a Vega-Lite v5 spec with its data inline (JSON-serialisable)."""
    values = [
        {"category": nfc(category), "value": value if math.isfinite(value) else None}
        for category, value in zip(chart.categories, chart.values, strict=True)
    ]
    y = {
        "field": "category",
        "type": "nominal",
        "sort": None,  # the order given, not alphabetical
        "title": None,
        "axis": {"labelLimit": 260, "labelFontSize": 11},
    }
    axis: dict[str, Any] = {"format": ",~r", "titleFontSize": 11, "tickCount": 6}
    if all(float(v).is_integer() for v in chart.values if math.isfinite(v)):
        axis["tickMinStep"] = 1  # counts: no 0.5 ticks on a small chart
    x = {"field": "value", "type": "quantitative", "title": nfc(chart.value_label), "axis": axis}
    return {
        "$schema": SCHEMA,
        "title": {"text": nfc(chart.title), "anchor": "start", "fontSize": 14},
        "data": {"values": values},
        "width": WIDTH,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "height": {"step": BAR_STEP},
        "encoding": {"y": y, "x": x},
        "layer": [
            {"mark": {"type": "bar", "color": "#2F6EBA"}},
            {
                "mark": {"type": "text", "align": "left", "dx": 3, "fontSize": 11},
                "encoding": {"text": {"field": "value", "type": "quantitative", "format": ",~r"}},
            },
        ],
        "config": {"font": FAMILY, "view": {"stroke": None}, "background": "white"},
    }


def svg(chart: Chart) -> str:
    """The chart as an SVG document (text as text, in the bundled Noto Sans)."""
    _register_fonts()
    return vl_convert.vegalite_to_svg(spec(chart), format_locale=VI_FORMAT_LOCALE)
