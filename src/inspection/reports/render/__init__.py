"""Renderers of a `ReportDocument`: `csv.stream`, `xlsx.write`, `pdf.render` and `charts.svg`.

Each takes the document model (`reports/document.py`) and knows nothing of findings or units;
the formats and their choices are described in docs/reports.md ("Formats").
"""
