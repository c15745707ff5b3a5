"""Text search that ignores Vietnamese diacritics and case: "vo nhai" finds "Võ Nhai".

Each searchable name is stored beside a folded copy (`fold`), and queries compare folded text with
LIKE, which behaves the same on SQLite and PostgreSQL and needs no database extension.
"""

from __future__ import annotations

import unicodedata

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

# Letters that Unicode does not decompose into base + combining mark.
_SPECIAL = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "ø": "o", "ł": "l", "ß": "ss"})


def fold(text: str) -> str:
    """Lower-case, strip diacritics and collapse whitespace."""
    decomposed = unicodedata.normalize("NFD", text.translate(_SPECIAL))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


def fold_for_column(text: str, length: int = 255) -> str:
    """`fold`, cut to the column's length: folding may lengthen text ("ß" → "ss")."""
    return fold(text)[:length]


def folded_contains(column: InstrumentedAttribute[str], query: str) -> ColumnElement[bool]:
    """SQL: the folded column contains the folded query (LIKE metacharacters escaped)."""
    return column.contains(fold(query), autoescape=True)
