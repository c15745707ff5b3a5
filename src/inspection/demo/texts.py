"""Vietnamese wording of the generated history (`demo_history`): titles, notes, names.

Kept apart from the generator so that the rules there stay readable. Every phrase is the kind a
Sở Nội vụ inspection team writes; none names a unit, so an unannounced plan's text never gives a
target away (seal.plan_text_withheld relies on planners doing the same).
"""

from __future__ import annotations

from inspection.findings.models import Category

# Finding titles by category: what the team writes on the tablet.
FINDING_TITLES: dict[Category, tuple[str, ...]] = {
    Category.LATE_DOSSIERS: (
        "Hồ sơ đăng ký khai sinh trả kết quả trễ hạn, không có phiếu xin lỗi",
        "Hồ sơ chứng thực bản sao trễ hạn so với phiếu hẹn",
        "Hồ sơ cấp giấy chứng nhận quyền sử dụng đất quá hạn giải quyết",
        "Hồ sơ đăng ký kết hôn trả kết quả chậm 02 ngày làm việc",
        "Phiếu hẹn trả kết quả ghi sai thời hạn giải quyết",
    ),
    Category.EXTRA_DOCUMENTS_REQUESTED: (
        "Yêu cầu người dân nộp thêm bản sao sổ hộ khẩu",
        "Yêu cầu bản sao có chứng thực giấy tờ đã có trong cơ sở dữ liệu quốc gia về dân cư",
        "Yêu cầu xác nhận của thôn, tổ dân phố ngoài thành phần hồ sơ",
        "Yêu cầu nộp thêm giấy khám sức khỏe không có trong quy định",
    ),
    Category.PROCEDURES_NOT_POSTED: (
        "Không niêm yết thủ tục chứng thực tại Bộ phận một cửa",
        "Bảng niêm yết thủ tục hành chính chưa cập nhật quyết định công bố mới",
        "Không công khai phí, lệ phí của thủ tục đăng ký hộ tịch",
        "Không niêm yết số điện thoại đường dây nóng tiếp nhận phản ánh, kiến nghị",
    ),
    Category.ABSENT_OR_LATE: (
        "Công chức một cửa vắng mặt trong giờ hành chính không có lý do",
        "Công chức đến muộn 45 phút so với giờ làm việc",
        "Công chức không đeo thẻ công chức khi làm việc",
        "Bàn tiếp nhận hồ sơ không có người trực trong giờ làm việc",
    ),
    Category.CONDUCT_TOWARD_CITIZENS: (
        "Thái độ thiếu tôn trọng với người dân khi hướng dẫn hồ sơ",
        "Hướng dẫn người dân không đầy đủ, phải đi lại nhiều lần",
        "Né tránh, đùn đẩy việc tiếp nhận hồ sơ sang bộ phận khác",
        "Người dân phản ánh bị gây phiền hà khi nộp hồ sơ",
    ),
    Category.ISO_9001_NONCONFORMITY: (
        "Quy trình ISO 9001:2015 chưa cập nhật theo thủ tục hành chính mới",
        "Thiếu hồ sơ đánh giá nội bộ hệ thống quản lý chất lượng năm nay",
        "Sổ theo dõi hồ sơ không khớp với phần mềm một cửa điện tử",
    ),
    Category.ONLINE_SERVICE_NOT_WORKING: (
        "Không tiếp nhận hồ sơ trực tuyến toàn trình đã công bố",
        "Máy tính tra cứu dịch vụ công trực tuyến không kết nối mạng",
        "Chưa số hóa kết quả giải quyết thủ tục hành chính theo quy định",
        "Không hướng dẫn người dân thanh toán trực tuyến phí, lệ phí",
    ),
    Category.EQUIPMENT: (
        "Máy lấy số thứ tự không hoạt động",
        "Máy quét tài liệu hỏng, chưa được sửa chữa",
        "Thiếu ghế chờ cho người dân tại Bộ phận một cửa",
        "Máy đánh giá mức độ hài lòng không hoạt động",
    ),
    Category.OTHER: (
        "Hòm thư góp ý không được mở định kỳ",
        "Chưa bố trí sổ tiếp nhận phản ánh, kiến nghị của người dân",
        "Biển chỉ dẫn Bộ phận một cửa bị che khuất",
    ),
}

FINDING_DESCRIPTIONS = (
    "Đoàn kiểm tra ghi nhận trực tiếp tại Bộ phận tiếp nhận và trả kết quả.",
    "Người dân phản ánh trực tiếp với đoàn, có xác nhận của công chức tiếp nhận.",
    "Đối chiếu sổ theo dõi với phần mềm một cửa điện tử của tỉnh.",
    "Kiểm tra ngẫu nhiên hồ sơ đã giải quyết trong tháng trước.",
    "Đoàn quan sát trong thời gian làm việc buổi sáng, có chụp ảnh hiện trường.",
    None,
)

RECOMMENDATIONS: dict[Category, str] = {
    Category.LATE_DOSSIERS: (
        "Rà soát toàn bộ hồ sơ trễ hạn, gửi phiếu xin lỗi và hẹn lại ngày trả kết quả."
    ),
    Category.EXTRA_DOCUMENTS_REQUESTED: "Chấm dứt ngay việc yêu cầu giấy tờ ngoài quy định.",
    Category.PROCEDURES_NOT_POSTED: (
        "Niêm yết công khai, đầy đủ thủ tục hành chính theo quyết định công bố."
    ),
    Category.ABSENT_OR_LATE: (
        "Chấn chỉnh việc chấp hành thời giờ làm việc; kiểm điểm công chức vi phạm."
    ),
    Category.CONDUCT_TOWARD_CITIZENS: "Tổ chức kiểm điểm, chấn chỉnh thái độ phục vụ người dân.",
    Category.ISO_9001_NONCONFORMITY: "Cập nhật quy trình, hồ sơ theo TCVN ISO 9001:2015.",
    Category.ONLINE_SERVICE_NOT_WORKING: (
        "Khắc phục ngay việc tiếp nhận, giải quyết hồ sơ trực tuyến."
    ),
    Category.EQUIPMENT: "Sửa chữa, bổ sung trang thiết bị phục vụ người dân.",
    Category.OTHER: "Khắc phục tồn tại, báo cáo kết quả về Sở Nội vụ.",
}

# What a corrective action asks of the unit (requirement), by category.
REQUIREMENTS: dict[Category, str] = {
    Category.LATE_DOSSIERS: "Giải quyết dứt điểm hồ sơ trễ hạn; gửi phiếu xin lỗi người dân",
    Category.EXTRA_DOCUMENTS_REQUESTED: "Chấn chỉnh việc tiếp nhận hồ sơ đúng thành phần quy định",
    Category.PROCEDURES_NOT_POSTED: "Niêm yết công khai đầy đủ thủ tục hành chính",
    Category.ABSENT_OR_LATE: "Kiểm điểm công chức vi phạm thời giờ làm việc, báo cáo kết quả",
    Category.CONDUCT_TOWARD_CITIZENS: "Tổ chức kiểm điểm trách nhiệm, báo cáo hình thức xử lý",
    Category.ISO_9001_NONCONFORMITY: "Cập nhật quy trình ISO 9001:2015, báo cáo kết quả",
    Category.ONLINE_SERVICE_NOT_WORKING: "Khôi phục tiếp nhận hồ sơ trực tuyến, báo cáo kết quả",
    Category.EQUIPMENT: "Sửa chữa, thay thế trang thiết bị hỏng",
    Category.OTHER: "Khắc phục tồn tại đoàn kiểm tra chỉ ra",
}

RESPONSES = (
    "Đơn vị đã khắc phục xong, có biên bản kiểm tra lại kèm theo.",
    "Đã tổ chức kiểm điểm, công chức nhận khuyết điểm và cam kết không tái phạm.",
    "Đã niêm yết lại đầy đủ, cập nhật theo quyết định công bố mới nhất.",
    "Đã sửa chữa thiết bị, đưa vào sử dụng bình thường.",
    "Đã rà soát, giải quyết dứt điểm các hồ sơ còn tồn.",
)
RETURN_REASONS = (
    "Báo cáo chưa kèm biên bản kiểm điểm.",
    "Kết quả khắc phục chưa đầy đủ, còn hồ sơ trễ hạn.",
    "Chưa nêu rõ hình thức xử lý đối với công chức vi phạm.",
)
EXTENSION_REASONS = (
    "Chờ kinh phí sửa chữa thiết bị từ ngân sách huyện.",
    "Công chức phụ trách đang đi học tập trung.",
    "Cần thêm thời gian rà soát toàn bộ hồ sơ năm nay.",
)
CANCEL_REASONS = (
    "Nội dung đã được xử lý trong kết luận thanh tra khác.",
    "Đơn vị sáp nhập, chuyển giao cho đơn vị mới theo dõi.",
)
DISMISS_REASONS = (
    "Trùng với phát hiện đã ghi nhận trước.",
    "Đơn vị xuất trình được giấy tờ chứng minh thực hiện đúng quy định.",
    "Ghi nhận nhầm đơn vị.",
)
CONCLUSIONS = (
    "Đơn vị cơ bản thực hiện đúng quy định về kiểm soát thủ tục hành chính.",
    "Đơn vị còn một số tồn tại, hạn chế; yêu cầu khắc phục trong thời hạn.",
    "Đơn vị chấp hành tốt kỷ luật, kỷ cương hành chính.",
    "Còn nhiều tồn tại trong giải quyết thủ tục hành chính; yêu cầu kiểm điểm trách nhiệm.",
)
FAIL_NOTES = (
    "Chưa đạt, xem phát hiện của đoàn.",
    "Không đạt yêu cầu tại thời điểm kiểm tra.",
)
VISIT_CANCEL_REASONS = (
    "Đơn vị đang tổ chức bầu cử, đề nghị lùi lịch.",
    "Trùng lịch kiểm tra của Thanh tra tỉnh.",
    "Đơn vị sáp nhập theo đề án sắp xếp đơn vị hành chính.",
)
PLAN_CANCEL_REASONS = (
    "Ủy ban nhân dân tỉnh điều chỉnh kế hoạch kiểm tra.",
    "Gộp vào đợt kiểm tra liên ngành.",
)
LATE_CHECK_IN_REASONS = (
    "Đơn vị đề nghị lùi một ngày do họp Hội đồng nhân dân.",
    "Đường vào xã bị sạt lở, đoàn đến chậm một ngày.",
)

OFFICIAL_POSITIONS = (
    "Công chức Tư pháp - Hộ tịch",
    "Công chức Văn phòng - Thống kê",
    "Công chức Địa chính - Xây dựng",
    "Công chức Văn hóa - Xã hội",
    "Công chức Tài chính - Kế toán",
    "Viên chức Bộ phận một cửa",
)
FAMILY_NAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô", "Dương")
MIDDLE_NAMES = ("Văn", "Thị", "Đức", "Minh", "Thu", "Quang", "Hữu", "Ngọc", "Thanh")
GIVEN_NAMES = (
    "An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hằng", "Hoa", "Hùng", "Lan", "Linh", "Long",
    "Mai", "Nam", "Phương", "Quân", "Thảo", "Trang", "Tú", "Yến", "Đạt", "Sơn",
)  # fmt: skip

# Discipline proposals (demo history).
DISCIPLINE_EXTENSION_REASONS = (
    "Vụ việc phức tạp, cần xác minh thêm hồ sơ tại đơn vị",
    "Cần trưng cầu ý kiến cơ quan chuyên môn về hồ sơ liên quan",
    "Người có hành vi vi phạm đang nghỉ ốm, chưa thể tổ chức họp kiểm điểm",
)
DISCIPLINE_NOT_PURSUED_REASONS = (
    "Hội đồng kỷ luật kết luận không đủ căn cứ xử lý kỷ luật",
    "Vi phạm đã được khắc phục kịp thời, mức độ không đến mức phải xử lý kỷ luật",
    "Người vi phạm đã nghỉ hưu trước khi xem xét",
)
DISCIPLINE_WITHDRAW_REASONS = (
    "Nhầm người vi phạm, đề xuất lại sau khi xác minh",
    "Trùng với đề xuất đã gửi trước đó",
    "Chuyển cơ quan có thẩm quyền xem xét theo quy định",
)
DECISION_ISSUERS = ("QĐ-UBND", "QĐ-SNV", "QĐ-CT")
