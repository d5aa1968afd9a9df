"""The case number: street code (9) + acceptance date (8) + daily sequence (4)."""
from __future__ import annotations

from datetime import date

import pytest

from civicgrid_intake.domain.case_number import CaseNumber, InvalidCaseNumber


def test_format_and_parse_round_trip() -> None:
    number = CaseNumber("320104001", date(2025, 10, 9), 42)
    assert str(number) == "320104001202510090042"
    assert CaseNumber.parse("320104001202510090042") == number
    assert CaseNumber.parse(" 320104001202510090042 ") == number


def test_numbers_sort_by_street_then_day_then_sequence() -> None:
    a = CaseNumber("320104001", date(2025, 10, 9), 2)
    b = CaseNumber("320104001", date(2025, 10, 9), 10)
    c = CaseNumber("320104001", date(2025, 10, 10), 1)
    assert sorted([c, b, a]) == [a, b, c]
    assert sorted(str(n) for n in (c, b, a)) == [str(a), str(b), str(c)]  # also as text


@pytest.mark.parametrize("text", [
    "32010400120251009004",      # 20 digits
    "3201040012025100900421",    # 22 digits
    "32010400120251009004X",
    "320104001-20251009-0042",
    "320104001202502300042",     # 30 February
    "320104001202513010042",     # month 13
    "320104001202510090000",     # sequence 0
    "",
])
def test_bad_case_numbers(text: str) -> None:
    with pytest.raises(InvalidCaseNumber):
        CaseNumber.parse(text)


@pytest.mark.parametrize("street, sequence", [("32010400", 1), ("3201040011", 1), ("32010400a", 1),
                                              ("320104001", 0), ("320104001", 10_000)])
def test_bad_parts(street: str, sequence: int) -> None:
    with pytest.raises(InvalidCaseNumber):
        CaseNumber(street, date(2025, 10, 9), sequence)
