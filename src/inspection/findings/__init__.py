"""Findings recorded on site, offline sync, and (later) corrective actions."""
