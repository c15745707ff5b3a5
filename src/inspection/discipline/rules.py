"""The law of discipline as data: which measures apply to whom, by the date of the violation.

`RULES` is one table. Each row allows one measure for one status of official, under one
condition on holding a management post, for violations committed from `effective_from` up to
and including `effective_to` (None: still in force). The next change of the law is a new row
(and an `effective_to` on the rows it ends), nothing else; docs/discipline.md lists every row
with its source.

Deadlines are fixed by law too and live here: 90 days to process a case from its detection,
extendable to 150 for complex cases. Limitation periods are configurable
(`INSPECTION_DISCIPLINE_LIMITATION_YEARS`) and read from settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


class OfficialStatus(StrEnum):
    """Who the official is in law: cán bộ, công chức or viên chức."""

    OFFICIAL = "official"  # cán bộ
    CIVIL_SERVANT = "civil_servant"  # công chức
    PUBLIC_EMPLOYEE = "public_employee"  # viên chức


class Measure(StrEnum):
    """Disciplinary measures (hình thức kỷ luật), lightest first."""

    REPRIMAND = "reprimand"  # khiển trách
    WARNING = "warning"  # cảnh cáo
    SALARY_STEP_REDUCTION = "salary_step_reduction"  # hạ bậc lương
    DEMOTION = "demotion"  # giáng chức
    REMOVAL_FROM_POST = "removal_from_post"  # cách chức
    DISMISSAL = "dismissal"  # buộc thôi việc
    REMOVAL_FROM_OFFICE = "removal_from_office"  # bãi nhiệm


# Lightest first: the order in which `allowed_measures` is listed.
MEASURE_ORDER: tuple[Measure, ...] = tuple(Measure)

MEASURE_LABELS: dict[Measure, str] = {
    Measure.REPRIMAND: "Khiển trách",
    Measure.WARNING: "Cảnh cáo",
    Measure.SALARY_STEP_REDUCTION: "Hạ bậc lương",
    Measure.DEMOTION: "Giáng chức",
    Measure.REMOVAL_FROM_POST: "Cách chức",
    Measure.DISMISSAL: "Buộc thôi việc",
    Measure.REMOVAL_FROM_OFFICE: "Bãi nhiệm",
}


class Post(StrEnum):
    """The condition a row puts on holding a management post (chức vụ lãnh đạo, quản lý)."""

    ANY = "any"
    HOLDER = "holder"
    NON_HOLDER = "non_holder"

    def admits(self, holds_management_post: bool) -> bool:
        """Whether an official who does (not) hold a post meets the condition."""
        if self is Post.ANY:
            return True
        return holds_management_post is (self is Post.HOLDER)


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the law: `measure` may be applied to `status` (under `post`) for violations
    committed between `effective_from` and `effective_to`, both included."""

    status: OfficialStatus
    post: Post
    measure: Measure
    effective_from: date
    effective_to: date | None
    source: str

    def applies(self, status: OfficialStatus, holds_post: bool, violation_date: date) -> bool:
        """Whether this row covers an official of `status` for a violation on that date."""
        return (
            self.status is status
            and self.post.admits(holds_post)
            and self.effective_from <= violation_date
            and (self.effective_to is None or violation_date <= self.effective_to)
        )


# Law 52/2019/QH14 (amending the Law on Cán bộ, Công chức 2008 and the Law on Viên chức 2010)
# took effect on 1 July 2020; Decree 112/2020/NĐ-CP (18 Sep 2020), amended by Decree
# 71/2023/NĐ-CP (20 Sep 2023), details it. Decree 172/2025/NĐ-CP, under the Law on Cán bộ,
# Công chức 2025, replaces both for cán bộ and công chức from 1 July 2025.
EARLIER_FROM = date(2020, 7, 1)
EARLIER_TO = date(2025, 6, 30)
CURRENT_FROM = date(2025, 7, 1)

_CBCC_2019 = "Luật CBCC 2008 sửa đổi 2019 (Luật 52/2019/QH14)"
_ND112 = "Nghị định 112/2020/NĐ-CP, sửa đổi bởi Nghị định 71/2023/NĐ-CP"
_CB_OLD = f"{_CBCC_2019}, Điều 78; {_ND112}, Điều 7 khoản 1"
_CC_OLD = f"{_CBCC_2019}, Điều 79; {_ND112}, Điều 7 khoản 2-3"
_VC_LAW = "Luật Viên chức 2010 sửa đổi 2019 (Luật 52/2019/QH14)"
_VC = f"{_VC_LAW}, Điều 52; {_ND112}, Điều 7 khoản 4-5"
_CB_NEW = "Luật CBCC 2025; Nghị định 172/2025/NĐ-CP (cán bộ)"
_CC_NEW = "Luật CBCC 2025; Nghị định 172/2025/NĐ-CP (công chức)"

_S, _C, _V = OfficialStatus.OFFICIAL, OfficialStatus.CIVIL_SERVANT, OfficialStatus.PUBLIC_EMPLOYEE
_M = Measure

RULES: tuple[Rule, ...] = (
    # --- cán bộ, violations from 1 July 2020 to 30 June 2025 ---
    Rule(_S, Post.ANY, _M.REPRIMAND, EARLIER_FROM, EARLIER_TO, _CB_OLD),
    Rule(_S, Post.ANY, _M.WARNING, EARLIER_FROM, EARLIER_TO, _CB_OLD),
    Rule(_S, Post.HOLDER, _M.REMOVAL_FROM_POST, EARLIER_FROM, EARLIER_TO, _CB_OLD),
    Rule(_S, Post.ANY, _M.REMOVAL_FROM_OFFICE, EARLIER_FROM, EARLIER_TO, _CB_OLD),
    # --- cán bộ, from 1 July 2025 ---
    Rule(_S, Post.ANY, _M.REPRIMAND, CURRENT_FROM, None, _CB_NEW),
    Rule(_S, Post.ANY, _M.WARNING, CURRENT_FROM, None, _CB_NEW),
    Rule(_S, Post.HOLDER, _M.REMOVAL_FROM_POST, CURRENT_FROM, None, _CB_NEW),
    Rule(_S, Post.ANY, _M.REMOVAL_FROM_OFFICE, CURRENT_FROM, None, _CB_NEW),
    # --- công chức, violations from 1 July 2020 to 30 June 2025 ---
    Rule(_C, Post.ANY, _M.REPRIMAND, EARLIER_FROM, EARLIER_TO, _CC_OLD),
    Rule(_C, Post.ANY, _M.WARNING, EARLIER_FROM, EARLIER_TO, _CC_OLD),
    Rule(_C, Post.NON_HOLDER, _M.SALARY_STEP_REDUCTION, EARLIER_FROM, EARLIER_TO, _CC_OLD),
    Rule(_C, Post.HOLDER, _M.DEMOTION, EARLIER_FROM, EARLIER_TO, _CC_OLD),
    Rule(_C, Post.HOLDER, _M.REMOVAL_FROM_POST, EARLIER_FROM, EARLIER_TO, _CC_OLD),
    Rule(_C, Post.ANY, _M.DISMISSAL, EARLIER_FROM, EARLIER_TO, _CC_OLD),
    # --- công chức, from 1 July 2025: no salary-step reduction, no demotion ---
    Rule(_C, Post.ANY, _M.REPRIMAND, CURRENT_FROM, None, _CC_NEW),
    Rule(_C, Post.ANY, _M.WARNING, CURRENT_FROM, None, _CC_NEW),
    Rule(_C, Post.HOLDER, _M.REMOVAL_FROM_POST, CURRENT_FROM, None, _CC_NEW),
    Rule(_C, Post.ANY, _M.DISMISSAL, CURRENT_FROM, None, _CC_NEW),
    # --- viên chức, from 1 July 2020, unchanged on 1 July 2025 (Decree 172 covers only cán bộ
    # and công chức) ---
    Rule(_V, Post.ANY, _M.REPRIMAND, EARLIER_FROM, None, _VC),
    Rule(_V, Post.ANY, _M.WARNING, EARLIER_FROM, None, _VC),
    Rule(_V, Post.HOLDER, _M.REMOVAL_FROM_POST, EARLIER_FROM, None, _VC),
    Rule(_V, Post.ANY, _M.DISMISSAL, EARLIER_FROM, None, _VC),
)

# The earliest violation date the table has rules for.
TABLE_STARTS = min(rule.effective_from for rule in RULES)


def rules_for(status: OfficialStatus, holds_post: bool, violation_date: date) -> list[Rule]:
    """The rows that apply, lightest measure first."""
    rows = [r for r in RULES if r.applies(status, holds_post, violation_date)]
    return sorted(rows, key=lambda r: MEASURE_ORDER.index(r.measure))


def allowed_measures(status: OfficialStatus, holds_post: bool, violation_date: date) -> list[str]:
    """The measures the law allows for this official and violation date, lightest first."""
    return [r.measure.value for r in rules_for(status, holds_post, violation_date)]


def legal_sources(status: OfficialStatus, holds_post: bool, violation_date: date) -> list[str]:
    """The sources of the rows that apply (each once, in table order)."""
    return list(dict.fromkeys(r.source for r in rules_for(status, holds_post, violation_date)))


# Processing time (thời hạn xử lý kỷ luật): from the detection of the violation to the decision,
# at most 90 days, or 150 for complex cases needing inspection or verification (Law on CBCC
# amended 2019, Art. 80(3); Law on Viên chức amended 2019, Art. 53(3)).
PROCESSING_DAYS = 90
EXTENDED_PROCESSING_DAYS = 150


def processing_due_on(detected_date: date, extended: bool) -> date:
    """The last day to decide. The day of detection is not counted (Civil Code Art. 147)."""
    days = EXTENDED_PROCESSING_DAYS if extended else PROCESSING_DAYS
    return detected_date + timedelta(days=days)


def add_years(day: date, years: int) -> date:
    """The same calendar day `years` later; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def limitation_class(measure: Measure) -> str:
    """The class of measure a limitation period is configured for: `reprimand` or `other`."""
    return "reprimand" if measure is Measure.REPRIMAND else "other"


def limitation_ends_on(violation_date: date, years: int) -> date:
    """The last day on which the violation may still be disciplined: the anniversary of the
    violation `years` later (a period in years ends on the corresponding day, Civil Code
    Art. 148)."""
    return add_years(violation_date, years)


# A measure decided stays "in force" (đang trong thời gian thi hành kỷ luật) this many months
# from its decision: a new violation meanwhile calls for a heavier measure.
IN_FORCE_MONTHS = 12
