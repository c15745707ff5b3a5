"""Each report's answer as a `ReportDocument`, the one input of the CSV, XLSX and PDF renderers.

Built from the very Struct the JSON answer is, so a number is computed once and every format shows
the same one. The first table of a document is its main table, the one a CSV download carries
(a CSV file holds one table); XLSX and PDF carry them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case
from sqlalchemy.sql.base import ReadOnlyColumnCollection

from inspection.discipline.models import ProposalStatus
from inspection.discipline.rules import MEASURE_LABELS, Measure
from inspection.findings.models import CATEGORY_LABELS, FindingStatus, Severity
from inspection.plans.models import PlanKind, VisitStatus
from inspection.reports import schemas
from inspection.reports.document import Cell, Chart, Column, ReportDocument, Table
from inspection.reports.periods import Period
from inspection.reports.render import csv as csv_render
from inspection.reports.render.cells import display
from inspection.reports.repository import RegisterRecord

KIND_LABELS = {
    PlanKind.SCHEDULED.value: "Theo kế hoạch",
    PlanKind.UNANNOUNCED.value: "Đột xuất",
}
SEVERITY_LABELS = {
    Severity.OBSERVATION.value: "Lưu ý",
    Severity.MINOR.value: "Nhẹ",
    Severity.MAJOR.value: "Nghiêm trọng",
    Severity.CRITICAL.value: "Đặc biệt nghiêm trọng",
}
FINDING_STATUS_LABELS = {
    FindingStatus.DRAFT.value: "Dự thảo",
    FindingStatus.SUBMITTED.value: "Đã xác nhận",
    FindingStatus.CLOSED.value: "Đã khắc phục",
    FindingStatus.DISMISSED.value: "Đã hủy",
}
VISIT_STATUS_LABELS = {
    VisitStatus.PLANNED.value: "Chưa kiểm tra",
    VisitStatus.CHECKED_IN.value: "Đang kiểm tra",
    VisitStatus.CHECKED_OUT.value: "Đã kết thúc làm việc",
    VisitStatus.CONCLUDED.value: "Đã kết luận",
    VisitStatus.CANCELLED.value: "Đã hủy",
}


PROPOSAL_STATUS_LABELS = {
    ProposalStatus.PROPOSED.value: "Đang xem xét",
    ProposalStatus.DECIDED.value: "Đã quyết định kỷ luật",
    ProposalStatus.NOT_PURSUED.value: "Không xử lý kỷ luật",
    ProposalStatus.WITHDRAWN.value: "Đã rút đề xuất",
}
DEADLINE_LABELS = {
    schemas.DeadlineKind.PROCESSING.value: "Thời hạn xử lý kỷ luật",
    schemas.DeadlineKind.LIMITATION.value: "Thời hiệu xử lý kỷ luật",
}


def measure_label(measure: str | None) -> str | None:
    """The Vietnamese name of a disciplinary measure (the code itself if unknown)."""
    if measure is None:
        return None
    try:
        return MEASURE_LABELS[Measure(measure)]
    except ValueError:
        return measure


# By the stored code, for the register's million lookups (no `Category(...)` per row).
_CATEGORY_NAMES = {category.value: names[0] for category, names in CATEGORY_LABELS.items()}


def category_label(category: str) -> str:
    """The Vietnamese name of a finding category (the code itself if unknown)."""
    return _CATEGORY_NAMES.get(category, category)


def _findings_tables(findings: schemas.FindingCounts) -> tuple[Table, Table]:
    return (
        Table(
            name="linh-vuc",
            title="Phát hiện theo lĩnh vực",
            columns=(
                Column("category", "Lĩnh vực"),
                Column("count", "Số phát hiện", "integer"),
            ),
            rows=tuple((category_label(c), n) for c, n in findings.by_category.items()),
        ),
        Table(
            name="muc-do",
            title="Phát hiện theo mức độ",
            columns=(
                Column("severity", "Mức độ"),
                Column("count", "Số phát hiện", "integer"),
            ),
            rows=tuple((SEVERITY_LABELS.get(s, s), n) for s, n in findings.by_severity.items()),
        ),
    )


def _category_chart(findings: schemas.FindingCounts) -> Chart:
    return Chart(
        title="Phát hiện theo lĩnh vực",
        categories=tuple(category_label(c) for c in findings.by_category),
        values=tuple(float(n) for n in findings.by_category.values()),
        value_label="Số phát hiện",
    )


def _overdue_chart(by_unit: list[schemas.UnitRow]) -> Chart:
    """Overdue corrective actions per child unit, most first; units without any left out."""
    overdue = sorted((u for u in by_unit if u.overdue_actions), key=lambda u: -u.overdue_actions)
    return Chart(
        title="Yêu cầu khắc phục quá hạn theo đơn vị",
        categories=tuple(u.name for u in overdue),
        values=tuple(float(u.overdue_actions) for u in overdue),
        value_label="Số yêu cầu quá hạn",
    )


def _actions_table(actions: schemas.ActionCounts) -> Table:
    """One row: every figure in its own typed column."""
    return Table(
        name="khac-phuc",
        title="Yêu cầu khắc phục",
        columns=(
            Column("total", "Tổng số", "integer"),
            Column("open", "Đang thực hiện", "integer"),
            Column("overdue", "Quá hạn", "integer"),
            Column("closed", "Đã hoàn thành", "integer"),
            Column("closed_on_time", "Hoàn thành đúng hạn", "integer"),
            Column("closed_on_time_rate", "Tỷ lệ đúng hạn", "percent"),
            Column("median_days_to_close", "Số ngày khắc phục (trung vị)", "decimal"),
        ),
        rows=(
            (
                actions.total,
                actions.open,
                actions.overdue,
                actions.closed,
                actions.closed_on_time,
                actions.closed_on_time_rate,
                actions.median_days_to_close,
            ),
        ),
    )


def summary_document(summary: schemas.Summary, reader: str) -> ReportDocument:
    """The summary report: by unit first, then inspections, findings and actions."""
    by_unit = Table(
        name="don-vi",
        title="Theo đơn vị",
        columns=(
            Column("code", "Mã đơn vị"),
            Column("name", "Đơn vị"),
            Column("visits", "Số cuộc kiểm tra", "integer"),
            Column("findings", "Số phát hiện", "integer"),
            Column("open_actions", "Yêu cầu đang thực hiện", "integer"),
            Column("overdue_actions", "Yêu cầu quá hạn", "integer"),
            # Scores are the share of criteria met (0 to 1): shown as a percentage.
            Column("average_score", "Điểm bình quân", "percent"),
        ),
        rows=tuple(
            (
                u.code,
                u.name,
                u.visits,
                u.findings,
                u.open_actions,
                u.overdue_actions,
                u.average_score,
            )
            for u in summary.by_unit
        ),
    )
    inspections = Table(
        name="kiem-tra",
        title="Kết quả kiểm tra",
        columns=(
            Column("kind", "Hình thức"),
            Column("plans", "Số kế hoạch", "integer"),
            Column("visits", "Số cuộc kiểm tra", "integer"),
            Column("concluded", "Đã kết luận", "integer"),
        ),
        rows=tuple(
            (KIND_LABELS[kind], i.plans, i.visits, i.concluded)
            for kind, i in (
                (PlanKind.SCHEDULED.value, summary.inspections.scheduled),
                (PlanKind.UNANNOUNCED.value, summary.inspections.unannounced),
            )
        ),
    )
    visits = summary.inspections.scheduled.visits + summary.inspections.unannounced.visits
    rate = summary.actions.closed_on_time_rate
    return ReportDocument(
        slug="bao-cao-tong-hop",
        title="BÁO CÁO TỔNG HỢP KẾT QUẢ KIỂM TRA CÔNG VỤ",
        scope_name=summary.scope.name,
        period_from=summary.period.first,
        period_to=summary.period.last,
        generated_at=summary.generated_at,
        generated_by=reader,
        tables=(
            by_unit,
            inspections,
            *_findings_tables(summary.findings),
            _actions_table(summary.actions),
        ),
        charts=tuple(
            chart
            for chart in (_category_chart(summary.findings), _overdue_chart(summary.by_unit))
            if chart.categories
        ),
        highlights=(
            ("Số cuộc kiểm tra", display("integer", visits)),
            ("Số đơn vị đã kiểm tra", display("integer", summary.units_inspected)),
            ("Số phát hiện", display("integer", summary.findings.total)),
            ("Yêu cầu khắc phục quá hạn", display("integer", summary.actions.overdue)),
            ("Tỷ lệ khắc phục đúng hạn", "—" if rate is None else f"{rate:.0%}"),
        ),
    )


def scorecard_document(scorecard: schemas.Scorecard, reader: str) -> ReportDocument:
    """The scorecard: the visits with their scores first, then findings and actions."""
    visits = Table(
        name="cuoc-kiem-tra",
        title="Các cuộc kiểm tra",
        columns=(
            Column("date", "Ngày", "date"),
            Column("unit_code", "Mã đơn vị"),
            Column("unit_name", "Đơn vị"),
            Column("plan_kind", "Hình thức"),
            Column("status", "Tình trạng"),
            Column("score", "Điểm", "decimal"),
        ),
        rows=tuple(
            (
                v.date,
                v.unit_code,
                v.unit_name,
                KIND_LABELS.get(v.plan_kind, v.plan_kind),
                VISIT_STATUS_LABELS.get(v.status, v.status),
                v.score,
            )
            for v in scorecard.visits
        ),
    )
    scored = [v for v in scorecard.visits if v.score is not None]
    charts = [_category_chart(scorecard.findings)]
    if scored:
        charts.insert(
            0,
            Chart(
                title="Điểm theo thời gian",
                categories=tuple(f"{v.date:%d/%m/%Y} {v.unit_code}" for v in scored),
                values=tuple(float(v.score or 0) for v in scored),
                value_label="Điểm",
            ),
        )
    average = scorecard.average_score
    return ReportDocument(
        slug=f"the-diem-{_file_part(scorecard.unit.code)}",
        title="THẺ ĐIỂM ĐƠN VỊ",
        scope_name=scorecard.unit.name,
        period_from=scorecard.period.first,
        period_to=scorecard.period.last,
        generated_at=scorecard.generated_at,
        generated_by=reader,
        tables=(
            visits,
            *_findings_tables(scorecard.findings),
            _actions_table(scorecard.actions),
            *_proposal_tables(scorecard.discipline),
        ),
        charts=tuple(charts),
        highlights=(
            ("Số cuộc kiểm tra", str(len(scorecard.visits))),
            ("Điểm bình quân", "—" if average is None else f"{average:.2f}"),
            ("Số phát hiện", str(scorecard.findings.total)),
            ("Yêu cầu khắc phục quá hạn", str(scorecard.actions.overdue)),
        ),
    )


def _proposal_tables(counts: schemas.ProposalCounts) -> tuple[Table, Table]:
    return (
        Table(
            name="hinh-thuc",
            sheet="Theo hình thức",
            title="Đề xuất theo hình thức kỷ luật",
            columns=(
                Column("measure", "Hình thức kỷ luật"),
                Column("proposed", "Số đề xuất", "integer"),
                Column("decided", "Số quyết định", "integer"),
            ),
            rows=tuple(
                (measure_label(m.measure), m.proposed, m.decided) for m in counts.by_measure
            ),
        ),
        Table(
            name="tinh-trang",
            sheet="Theo tình trạng",
            title="Đề xuất theo tình trạng",
            columns=(
                Column("status", "Tình trạng"),
                Column("count", "Số đề xuất", "integer"),
            ),
            rows=tuple(
                (PROPOSAL_STATUS_LABELS.get(status, status), n)
                for status, n in counts.by_status.items()
            ),
        ),
    )


def _measure_chart(counts: schemas.ProposalCounts) -> Chart:
    return Chart(
        title="Đề xuất theo hình thức kỷ luật",
        categories=tuple(measure_label(m.measure) or m.measure for m in counts.by_measure),
        values=tuple(float(m.proposed) for m in counts.by_measure),
        value_label="Số đề xuất",
    )


def _days_text(days_left: int) -> str:
    if days_left < 0:
        return f"Quá hạn {-days_left} ngày"
    if days_left == 0:
        return "Hết hạn hôm nay"
    return f"Còn {days_left} ngày"


def discipline_document(report: schemas.DisciplineReport, reader: str) -> ReportDocument:
    """The discipline report: the deadlines to watch first (the table a CSV carries), then the
    proposals, the officials flagged for repeats, the ranking of units and overdue actions."""
    deadlines = Table(
        name="thoi-han",
        sheet="Thời hạn",
        title=f"Đề xuất đến hạn trong {report.deadlines_within_days} ngày hoặc đã quá hạn",
        columns=(
            Column("official_name", "Họ và tên"),
            Column("official_position", "Chức vụ"),
            Column("unit_code", "Mã đơn vị"),
            Column("unit_name", "Đơn vị"),
            Column("measure", "Hình thức đề xuất"),
            Column("deadline", "Loại thời hạn"),
            Column("date", "Ngày hết hạn", "date"),
            Column("days_left", "Số ngày còn lại", "integer"),
            Column("state", "Tình trạng"),
        ),
        rows=tuple(
            (
                d.official_name,
                d.official_position,
                d.unit_code,
                d.unit_name,
                measure_label(d.measure),
                DEADLINE_LABELS.get(d.deadline.value, d.deadline.value),
                d.date,
                d.days_left,
                _days_text(d.days_left),
            )
            for d in report.deadlines
        ),
    )
    flagged = Table(
        name="vi-pham-nhieu-lan",
        sheet="Vi phạm nhiều lần",
        title=(
            f"Cán bộ vi phạm từ {report.repeat_threshold} lần trở lên trong 12 tháng "
            f"(đến ngày {report.repeats_as_of:%d/%m/%Y})"
        ),
        columns=(
            Column("name", "Họ và tên"),
            Column("position", "Chức vụ"),
            Column("unit_code", "Mã đơn vị"),
            Column("unit_name", "Đơn vị"),
            Column("count", "Số lần vi phạm", "integer"),
            Column("last_measure", "Hình thức kỷ luật gần nhất"),
            Column("last_decision_number", "Số quyết định"),
            Column("last_decision_date", "Ngày quyết định", "date"),
        ),
        rows=tuple(
            (
                o.name,
                o.position,
                o.unit_code,
                o.unit_name,
                o.count,
                measure_label(o.last_measure),
                o.last_decision_number,
                o.last_decision_date,
            )
            for o in report.flagged_officials
        ),
    )
    ranking = Table(
        name="xep-hang-don-vi",
        sheet="Xếp hạng đơn vị",
        title="Xếp hạng đơn vị theo số phát hiện trên một cuộc kiểm tra",
        columns=(
            Column("rank", "Thứ tự", "integer"),
            Column("code", "Mã đơn vị"),
            Column("name", "Đơn vị"),
            Column("visits", "Số cuộc kiểm tra", "integer"),
            Column("findings", "Số phát hiện", "integer"),
            Column("findings_per_visit", "Phát hiện / cuộc kiểm tra", "decimal"),
        ),
        rows=tuple(
            (n, u.code, u.name, u.visits, u.findings, u.findings_per_visit)
            for n, u in enumerate(report.units_by_findings_per_visit, start=1)
        ),
    )
    overdue = report.overdue_actions
    by_level = Table(
        name="qua-han-cap-do",
        sheet="Quá hạn theo cấp độ",
        title="Yêu cầu khắc phục quá hạn theo cấp độ báo cáo vượt cấp",
        columns=(
            Column("level", "Cấp độ", "integer"),
            Column("days_1_7", "Quá hạn 1-7 ngày", "integer"),
            Column("days_8_30", "Quá hạn 8-30 ngày", "integer"),
            Column("days_over_30", "Quá hạn trên 30 ngày", "integer"),
            Column("total", "Tổng số", "integer"),
        ),
        rows=tuple(
            (lv.level, lv.days_1_7, lv.days_8_30, lv.days_over_30, lv.total)
            for lv in overdue.by_level
        ),
    )
    by_unit = Table(
        name="qua-han-don-vi",
        sheet="Quá hạn theo đơn vị",
        title="Yêu cầu khắc phục quá hạn theo đơn vị",
        columns=(
            Column("code", "Mã đơn vị"),
            Column("name", "Đơn vị"),
            Column("overdue", "Yêu cầu quá hạn", "integer"),
        ),
        rows=tuple((u.code, u.name, u.overdue) for u in overdue.by_unit),
    )
    charts = [_measure_chart(report.proposals)]
    # As in the summary: the units with overdue actions, most first (the table lists them all).
    late = sorted((u for u in overdue.by_unit if u.overdue), key=lambda u: -u.overdue)
    if late:
        charts.append(
            Chart(
                title="Yêu cầu khắc phục quá hạn theo đơn vị",
                categories=tuple(u.name for u in late),
                values=tuple(float(u.overdue) for u in late),
                value_label="Số yêu cầu quá hạn",
            )
        )
    decided = report.proposals.by_status.get(ProposalStatus.DECIDED.value, 0)
    return ReportDocument(
        slug="bao-cao-ky-luat",
        title="BÁO CÁO TÌNH HÌNH XỬ LÝ KỶ LUẬT VÀ KHẮC PHỤC SAU KIỂM TRA",
        scope_name=report.scope.name,
        period_from=report.period.first,
        period_to=report.period.last,
        generated_at=report.generated_at,
        generated_by=reader,
        tables=(
            deadlines,
            *_proposal_tables(report.proposals),
            flagged,
            ranking,
            by_level,
            by_unit,
        ),
        charts=tuple(charts),
        highlights=(
            ("Số đề xuất xử lý kỷ luật", str(report.proposals.total)),
            ("Đã quyết định kỷ luật", str(decided)),
            ("Cán bộ vi phạm nhiều lần", str(len(report.flagged_officials))),
            (
                "Đề xuất sắp hết hạn hoặc quá hạn",
                str(len({d.proposal_id for d in report.deadlines})),
            ),
            ("Yêu cầu khắc phục quá hạn", str(overdue.total)),
        ),
    )


REGISTER_COLUMNS = (
    Column("unit_code", "Mã đơn vị"),
    Column("unit_name", "Đơn vị"),
    Column("visit_id", "Mã cuộc kiểm tra"),
    Column("plan_kind", "Hình thức"),
    Column("category", "Lĩnh vực"),
    Column("severity", "Mức độ"),
    Column("status", "Tình trạng"),
    Column("observed_at", "Thời điểm phát hiện", "datetime"),
    Column("title", "Nội dung"),
    Column("open_actions", "Yêu cầu đang thực hiện", "integer"),
)


def register_cells(record: RegisterRecord) -> tuple[Cell, ...]:
    """One register row as the renderers take it (`REGISTER_COLUMNS`)."""
    return (
        record.unit_code,
        record.unit_name,
        str(record.visit_id),
        KIND_LABELS.get(record.plan_kind, record.plan_kind),
        category_label(record.category),
        SEVERITY_LABELS.get(record.severity, record.severity),
        FINDING_STATUS_LABELS.get(record.status, record.status),
        record.observed_at,
        record.title,
        record.open_actions,
    )


def register_sql_line(columns: ReadOnlyColumnCollection[str, Any]) -> ColumnElement[str]:
    """PostgreSQL: one register row as CSV, written by the database: the cells of
    `register_cells`, as SQL over the register's columns (`ReportRepository.register_lines`),
    through `render.csv.sql_line`. The labels come from the same tables."""

    def labelled(column: ColumnElement[Any], labels: dict[str, str]) -> ColumnElement[Any]:
        return case(labels, value=column, else_=column)

    cells = (
        columns.unit_code,
        columns.unit_name,
        columns.visit_id,
        labelled(columns.plan_kind, KIND_LABELS),
        labelled(columns.category, _CATEGORY_NAMES),
        labelled(columns.severity, SEVERITY_LABELS),
        labelled(columns.status, FINDING_STATUS_LABELS),
        columns.observed_at,
        columns.title,
        columns.open_actions,
    )
    return csv_render.sql_line([column.kind for column in REGISTER_COLUMNS], cells)


def register_document(
    scope_name: str,
    period: Period,
    generated_at: datetime,
    reader: str,
    rows: Iterable[tuple[Cell, ...]],
) -> ReportDocument:
    """The findings register: one table whose rows stream from the database."""
    return ReportDocument(
        slug="so-theo-doi-phat-hien",
        title="SỔ THEO DÕI PHÁT HIỆN KIỂM TRA",
        scope_name=scope_name,
        period_from=period.first,
        period_to=period.last,
        generated_at=generated_at,
        generated_by=reader,
        tables=(Table("phat-hien", "Danh sách phát hiện", REGISTER_COLUMNS, rows),),
    )


def _file_part(text: str) -> str:
    """A unit code as part of a file name: letters, digits and hyphens."""
    cleaned = "".join(c if c.isascii() and c.isalnum() else "-" for c in text.lower())
    return "-".join(part for part in cleaned.split("-") if part) or "don-vi"
