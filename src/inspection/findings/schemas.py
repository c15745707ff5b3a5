"""API shapes of findings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from inspection.findings.models import Category, FindingStatus, Severity
from inspection.plans.schemas import CriterionCode, Position, Reason

Title = Annotated[str, Meta(min_length=1, max_length=500)]
LongText = Annotated[str, Meta(max_length=20_000)]


class Official(msgspec.Struct, forbid_unknown_fields=True):
    """An official involved (personal data: shown only to those who need it)."""

    name: Annotated[str, Meta(min_length=1, max_length=255)]
    position: Annotated[str, Meta(max_length=255)] | None = None


class FindingIn(msgspec.Struct, forbid_unknown_fields=True):
    """A finding as the tablet sends it; the id is in the path."""

    visit_id: UUID
    category: Category
    severity: Severity
    title: Title
    observed_at: datetime
    criterion_code: CriterionCode | None = None
    description: LongText | None = None
    position: Position | None = None
    officials: Annotated[list[Official], Meta(max_length=50)] = msgspec.field(default_factory=list)
    recommendation: LongText | None = None


class FindingUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to a finding; omitted fields stay."""

    category: Category | UnsetType = UNSET
    severity: Severity | UnsetType = UNSET
    title: Title | UnsetType = UNSET
    observed_at: datetime | UnsetType = UNSET
    criterion_code: CriterionCode | UnsetType | None = UNSET
    description: LongText | UnsetType | None = UNSET
    position: Position | UnsetType | None = UNSET
    officials: Annotated[list[Official], Meta(max_length=50)] | UnsetType = UNSET
    recommendation: LongText | UnsetType | None = UNSET


class Dismissal(msgspec.Struct, forbid_unknown_fields=True):
    """Why a finding is dismissed."""

    reason: Reason


class Finding(msgspec.Struct):
    """A finding as a viewer may see it; `officials` is null for those who may not know them."""

    id: UUID
    visit_id: UUID
    plan_id: UUID
    unit_id: UUID
    criterion_code: str | None
    category: Category
    severity: Severity
    title: str
    description: str | None
    observed_at: datetime
    position: Position | None
    officials: list[Official] | None
    recommendation: str | None
    status: FindingStatus
    submitted_at: datetime | None
    dismiss_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class CategoryInfo(msgspec.Struct):
    """A category with its labels."""

    code: Category
    label_vi: str
    label_en: str
