"""Discipline proposals (đề xuất xử lý kỷ luật): the rules of the law by effective date, deadlines,
repeat offences, and the decision."""
