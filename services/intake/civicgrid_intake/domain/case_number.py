"""The case number (受理编号) printed on the receipt: street code + acceptance date + sequence.

    320104001 20251009 0042   ->   "320104001202510090042"

21 digits, no separators, so it is read out over the phone and typed in without ambiguity:
the 9-digit street code (GB/T 2260 district + 3-digit street), the acceptance date
YYYYMMDD in China Standard Time, and the street's sequence of that day (0001-9999). The
sequence is handed out by whoever keeps the street's daily counter (the application layer);
unique per street and day, it makes the number unique.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

STREET_CODE_LENGTH = 9
MAX_DAILY_SEQUENCE = 9999
_CASE_NUMBER = re.compile(r"^(?P<street>[0-9]{9})(?P<day>[0-9]{8})(?P<sequence>[0-9]{4})$")


class InvalidCaseNumber(ValueError):
    pass


def _check_street_code(code: str) -> None:
    if not (isinstance(code, str) and len(code) == STREET_CODE_LENGTH and code.isascii() and code.isdigit()):
        raise InvalidCaseNumber(f"a street code has {STREET_CODE_LENGTH} digits, got {code!r}")


@dataclass(frozen=True, order=True)
class CaseNumber:
    street_code: str
    day: date  # the acceptance date in China Standard Time
    sequence: int  # 1..9999 within the street and day

    def __post_init__(self) -> None:
        _check_street_code(self.street_code)
        if not 1 <= self.sequence <= MAX_DAILY_SEQUENCE:
            raise InvalidCaseNumber(
                f"the daily sequence runs from 1 to {MAX_DAILY_SEQUENCE}, got {self.sequence}")
        if not 1000 <= self.day.year <= 9999:
            raise InvalidCaseNumber(f"year {self.day.year} does not fit YYYYMMDD")

    def __str__(self) -> str:
        return f"{self.street_code}{self.day:%Y%m%d}{self.sequence:04d}"

    @classmethod
    def parse(cls, text: str) -> "CaseNumber":
        match = _CASE_NUMBER.match(text.strip()) if isinstance(text, str) else None
        if not match:
            raise InvalidCaseNumber(
                f"a case number is 21 digits (street 9, date 8, sequence 4), got {text!r}")
        raw_day = match["day"]
        try:
            day = date(int(raw_day[:4]), int(raw_day[4:6]), int(raw_day[6:]))
        except ValueError:
            raise InvalidCaseNumber(f"{raw_day} in case number {text!r} is not a date") from None
        return cls(match["street"], day, int(match["sequence"]))
