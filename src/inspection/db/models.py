"""One place that imports every model module, so metadata (and Alembic) sees every table."""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "inspection.units.models",
    "inspection.audit.models",
    "inspection.plans.models",
    "inspection.findings.models",
    "inspection.actions.models",
    "inspection.discipline.models",
    "inspection.evidence.models",
    "inspection.notifications.models",
    "inspection.web.idempotency",
)


def import_all_models() -> None:
    """Import each model module once; mapping registers its tables on the shared metadata."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
