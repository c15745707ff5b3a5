"""A realistic demo: Thái Nguyên province, its departments, districts and communes, and the people
who inspect them. Loaded through the same services as the API (rules and audit included), and
idempotent: units already present are left as they are, users already present are skipped."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import GrantScope, Principal
from inspection.db.engine import Database
from inspection.db.session import transaction
from inspection.kit.search import fold
from inspection.plans import schemas as plan_schemas
from inspection.plans.checklists import ChecklistService
from inspection.plans.models import Checklist
from inspection.units import schemas
from inspection.units.bootstrap import ADMIN_USERNAME
from inspection.units.models import UnitKind, User
from inspection.units.roles import Role
from inspection.units.service import UnitService, UserService

DEMO_PASSWORD = "thainguyen-2026"  # noqa: S105 - printed for the demo on purpose
PROVINCE = ("TN", "Tỉnh Thái Nguyên")
DEPARTMENTS = [
    ("SNV", "Sở Nội vụ"),
    ("STP", "Sở Tư pháp"),
    ("SKHDT", "Sở Kế hoạch và Đầu tư"),
    ("STC", "Sở Tài chính"),
    ("SXD", "Sở Xây dựng"),
    ("STNMT", "Sở Tài nguyên và Môi trường"),
    ("SGDDT", "Sở Giáo dục và Đào tạo"),
    ("SYT", "Sở Y tế"),
    ("STTTT", "Sở Thông tin và Truyền thông"),
    ("TTPVHCC", "Trung tâm Phục vụ hành chính công tỉnh"),
]
# District -> communes (real names of the province before the 2025 reorganisation).
DISTRICTS: dict[tuple[str, str], list[str]] = {
    ("VN", "Huyện Võ Nhai"): [
        "Xã La Hiên",
        "Xã Lâu Thượng",
        "Xã Phú Thượng",
        "Xã Tràng Xá",
        "Xã Dân Tiến",
        "Xã Liên Minh",
        "Xã Bình Long",
        "Xã Phương Giao",
        "Xã Cúc Đường",
        "Xã Nghinh Tường",
        "Xã Vũ Chấn",
        "Xã Thần Sa",
        "Xã Sảng Mộc",
        "Xã Thượng Nung",
        "Thị trấn Đình Cả",
    ],
    ("DT", "Huyện Đại Từ"): [
        "Thị trấn Hùng Sơn",
        "Thị trấn Quân Chu",
        "Xã Phúc Lương",
        "Xã Minh Tiến",
        "Xã Yên Lãng",
        "Xã Đức Lương",
        "Xã Phú Cường",
        "Xã Na Mao",
        "Xã Phú Lạc",
        "Xã Tân Linh",
        "Xã Hà Thượng",
        "Xã Bản Ngoại",
        "Xã Tiên Hội",
        "Xã Cù Vân",
        "Xã La Bằng",
    ],
    ("DH", "Huyện Định Hóa"): [
        "Thị trấn Chợ Chu",
        "Xã Linh Thông",
        "Xã Lam Vỹ",
        "Xã Quy Kỳ",
        "Xã Tân Thịnh",
        "Xã Kim Phượng",
        "Xã Bảo Linh",
        "Xã Phúc Chu",
        "Xã Trung Hội",
        "Xã Định Biên",
    ],
    ("PL", "Huyện Phú Lương"): [
        "Thị trấn Đu",
        "Thị trấn Giang Tiên",
        "Xã Yên Ninh",
        "Xã Yên Trạch",
        "Xã Ôn Lương",
        "Xã Động Đạt",
        "Xã Phủ Lý",
        "Xã Hợp Thành",
        "Xã Phấn Mễ",
        "Xã Cổ Lũng",
    ],
    ("TPTN", "Thành phố Thái Nguyên"): [],
    ("TPSC", "Thành phố Sông Công"): [],
    ("TPPY", "Thành phố Phổ Yên"): [],
    ("DHY", "Huyện Đồng Hỷ"): [],
    ("PB", "Huyện Phú Bình"): [],
}
CHECKLIST_TITLE = "Kiểm tra công vụ tại Bộ phận một cửa cấp xã"
# (code, text, category, weight, evidence required, English note)
ONE_STOP_SHOP_CRITERIA = [
    (
        "C01",
        "Hồ sơ thủ tục hành chính được giải quyết đúng hạn; hồ sơ trễ hạn có phiếu xin lỗi "
        "và hẹn lại ngày trả kết quả",
        "late_dossiers",
        3.0,
        True,
        "Dossiers resolved on time; late ones carry an apology letter and a new date.",
    ),
    (
        "C02",
        "Không yêu cầu người dân, doanh nghiệp nộp thêm thành phần hồ sơ ngoài quy định",
        "extra_documents_requested",
        3.0,
        True,
        "No documents requested beyond those the procedure lists.",
    ),
    (
        "C03",
        "Niêm yết công khai, đầy đủ, đúng quy định các thủ tục hành chính tại Bộ phận một cửa",
        "procedures_not_posted",
        2.0,
        True,
        "Every procedure publicly and correctly posted at the one-stop shop.",
    ),
    (
        "C04",
        "Cán bộ, công chức có mặt tại vị trí làm việc đúng giờ, đeo thẻ công chức",
        "absent_or_late",
        2.0,
        False,
        "Staff at their post on time, wearing their badge.",
    ),
    (
        "C05",
        "Thái độ, tác phong, ứng xử với người dân đúng mực; không né tránh, đùn đẩy, gây phiền hà",
        "conduct_toward_citizens",
        2.0,
        False,
        "Courteous conduct; no avoiding, shifting or harassing.",
    ),
    (
        "C06",
        "Duy trì, áp dụng hệ thống quản lý chất lượng theo tiêu chuẩn TCVN ISO 9001:2015 "
        "(hồ sơ, quy trình được cập nhật)",
        "iso_9001_nonconformity",
        1.0,
        True,
        "ISO 9001:2015 quality system applied; records and procedures up to date.",
    ),
    (
        "C07",
        "Dịch vụ công trực tuyến hoạt động; tiếp nhận hồ sơ trực tuyến, thanh toán trực tuyến",
        "online_service_not_working",
        2.0,
        False,
        "Online public services work: online submission and payment.",
    ),
    (
        "C08",
        "Số hóa hồ sơ, kết quả giải quyết thủ tục hành chính theo quy định",
        "online_service_not_working",
        1.0,
        False,
        "Dossiers and results digitised as required.",
    ),
    (
        "C09",
        "Trang thiết bị tại Bộ phận một cửa đầy đủ, hoạt động tốt (máy tính, máy quét, "
        "ghế chờ, hệ thống xếp hàng)",
        "equipment",
        1.0,
        True,
        "One-stop shop equipment complete and working.",
    ),
]

# Communes whose head gets a demo account, with the one-stop shop (bộ phận một cửa) beneath them.
HEADED_COMMUNES = [
    "Xã La Hiên",
    "Xã Tràng Xá",
    "Thị trấn Đình Cả",
    "Xã Phúc Lương",
    "Thị trấn Chợ Chu",
]


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A demo account: who they are and which role they hold on which unit (their home unit);
    `system_wide` grants the role over the whole system instead."""

    username: str
    full_name: str
    role: Role
    unit_code: str
    system_wide: bool = False


def _slug(name: str) -> str:
    words = fold(name).replace("thi tran ", "").replace("xa ", "").upper().split()
    return "".join(words)


def commune_code(district: str, commune: str) -> str:
    """Stable demo code of a commune, e.g. TN-VN-LAHIEN."""
    return f"{PROVINCE[0]}-{district}-{_slug(commune)}"


def demo_rows() -> list[schemas.UnitImportRow]:
    """Every demo unit as import rows, parents first."""
    province_code = PROVINCE[0]
    rows = [schemas.UnitImportRow(province_code, PROVINCE[1], UnitKind.PROVINCE)]
    for code, name in DEPARTMENTS:
        kind = UnitKind.OTHER if code == "TTPVHCC" else UnitKind.DEPARTMENT
        rows.append(schemas.UnitImportRow(f"{province_code}-{code}", name, kind, province_code))
    for (district, district_name), communes in DISTRICTS.items():
        district_code = f"{province_code}-{district}"
        rows.append(
            schemas.UnitImportRow(district_code, district_name, UnitKind.DISTRICT, province_code)
        )
        for commune in communes:
            code = commune_code(district, commune)
            rows.append(
                schemas.UnitImportRow(code, f"UBND {commune}", UnitKind.COMMUNE, district_code)
            )
            if commune in HEADED_COMMUNES:
                rows.append(
                    schemas.UnitImportRow(
                        f"{code}-1C", f"Bộ phận một cửa {commune}", UnitKind.ONE_STOP_SHOP, code
                    )
                )
    return rows


def demo_users() -> list[DemoUser]:
    """A leader of the whole system (the Director of Home Affairs, who may verify the audit
    chain), a planner and inspectors of the province; heads of several communes, of the district
    above the first two (to see the district's view and escalation), of the three other
    districts with communes, and of La Hiên's one-stop shop (the head concerned by findings
    there, below the commune's head)."""
    snv = f"{PROVINCE[0]}-SNV"
    users = [
        DemoUser("lanh.dao", "Nguyễn Văn Hùng", Role.LEADER, PROVINCE[0], system_wide=True),
        DemoUser("ke.hoach", "Trần Thị Mai", Role.PLANNER, PROVINCE[0]),
        DemoUser("thanh.tra1", "Lê Minh Tuấn", Role.INSPECTOR, snv),
        DemoUser("thanh.tra2", "Phạm Thu Hà", Role.INSPECTOR, snv),
        DemoUser("thanh.tra3", "Hoàng Đức Anh", Role.INSPECTOR, snv),
    ]
    heads = ["Đỗ Văn Bình", "Vũ Thị Lan", "Ngô Quang Huy", "Bùi Thị Hạnh", "Đặng Văn Sơn"]
    communes = {c: d for (d, _), cs in DISTRICTS.items() for c in cs}
    for number, (commune, head) in enumerate(zip(HEADED_COMMUNES, heads, strict=True), start=1):
        users.append(
            DemoUser(
                f"chu.tich{number}", head, Role.UNIT_HEAD, commune_code(communes[commune], commune)
            )
        )
    users += [
        DemoUser("chu.tich.huyen", "Lương Văn Thắng", Role.UNIT_HEAD, f"{PROVINCE[0]}-VN"),
        # Heads of the other districts with communes: every commune then has a head concerned,
        # so corrective actions of the history (`inspection demo --history`) reach all of them.
        DemoUser("chu.tich.daitu", "Trịnh Văn Khánh", Role.UNIT_HEAD, f"{PROVINCE[0]}-DT"),
        DemoUser("chu.tich.dinhhoa", "Hà Thị Thu", Role.UNIT_HEAD, f"{PROVINCE[0]}-DH"),
        DemoUser("chu.tich.phuluong", "Mạc Văn Toàn", Role.UNIT_HEAD, f"{PROVINCE[0]}-PL"),
        DemoUser(
            "truong.mot.cua",
            "Triệu Thị Nga",
            Role.UNIT_HEAD,
            f"{commune_code('VN', HEADED_COMMUNES[0])}-1C",
        ),
    ]
    return users


async def load_demo(database: Database) -> str:
    """Load (or complete) the demo; return a summary with the demo sign-ins."""
    async with transaction(database) as session:
        admin = await session.scalar(select(User).where(User.username == ADMIN_USERNAME))
        if admin is None:
            raise RuntimeError("run the service or `inspection db upgrade` first: no admin yet")
        system_admin = Principal(
            admin.id, admin.username, admin.full_name, None, (GrantScope(Role.ADMIN, None, None),)
        )
        imported = await UnitService(session, system_admin).import_units(demo_rows())
        ids = {u.code: u.id for u in imported.units}
        checklist_added = await ensure_checklist(session, system_admin)
        users = UserService(session, system_admin)
        existing = set((await session.scalars(select(User.username))).all())
        added = 0
        for demo_user in demo_users():
            if demo_user.username in existing:
                continue
            unit_id = ids[demo_user.unit_code]
            await users.create(
                schemas.UserCreate(
                    username=demo_user.username,
                    full_name=demo_user.full_name,
                    password=DEMO_PASSWORD,
                    unit_id=unit_id,
                    grants=[
                        schemas.GrantCreate(
                            role=demo_user.role,
                            unit_id=None if demo_user.system_wide else unit_id,
                        )
                    ],
                )
            )
            added += 1
    lines = [
        f"Demo units: {imported.created} created, {imported.unchanged} already present.",
        f"Demo checklist: {'created' if checklist_added else 'already present'}"
        f" ({CHECKLIST_TITLE}).",
        f"Demo users: {added} created. Sign in with password '{DEMO_PASSWORD}':",
    ]
    lines += [
        f"  {u.username:<15} {u.role.value:<10} "
        f"{'(whole system)' if u.system_wide else u.unit_code:<25} {u.full_name}"
        for u in demo_users()
    ]
    return "\n".join(lines)


async def ensure_checklist(session: AsyncSession, admin: Principal) -> bool:
    """Create the one-stop-shop checklist unless a checklist with its title exists; return
    whether it was created."""
    if await session.scalar(select(Checklist.id).where(Checklist.title == CHECKLIST_TITLE)):
        return False
    await ChecklistService(session, admin).create(
        plan_schemas.ChecklistCreate(
            title=CHECKLIST_TITLE,
            description="Tiêu chí kiểm tra công vụ tại Bộ phận tiếp nhận và trả kết quả (một cửa).",
            criteria=[
                plan_schemas.CriterionIn(code, text, category, weight, evidence, note)
                for code, text, category, weight, evidence, note in ONE_STOP_SHOP_CRITERIA
            ],
        )
    )
    return True
