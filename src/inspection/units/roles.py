"""The roles a grant gives, apart from the models so that access control can name them without
loading any table."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a grant lets a user do within the granted unit's subtree."""

    ADMIN = "admin"
    PLANNER = "planner"
    INSPECTOR = "inspector"
    UNIT_HEAD = "unit_head"
    LEADER = "leader"
