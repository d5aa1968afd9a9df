"""The applicant's rating of the service: the national good/bad review scheme (好差评).

Five levels; the last two are bad reviews (差评). A bad review opens a follow-up: the
applicant is called back within 1 working day, the problem is fixed within a local
deadline (15 working days in Zhejiang, the default here; Beijing's 7 days are calendar
days, which a district configures as the nearest number of working days), and then the
applicant may rate once more.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

CALL_BACK_WORKING_DAYS = 1
DEFAULT_FIX_WORKING_DAYS = 15


class RatingLevel(str, enum.Enum):
    VERY_SATISFIED = "very_satisfied"  # 非常满意
    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    DISSATISFIED = "dissatisfied"  # 不满意
    VERY_DISSATISFIED = "very_dissatisfied"  # 非常不满意

    @property
    def is_bad_review(self) -> bool:
        return self in (RatingLevel.DISSATISFIED, RatingLevel.VERY_DISSATISFIED)


@dataclass(frozen=True)
class FollowUpPolicy:
    """How long a bad review's follow-up may take, in working days."""

    fix_working_days: int = DEFAULT_FIX_WORKING_DAYS
    call_back_working_days: int = CALL_BACK_WORKING_DAYS

    def __post_init__(self) -> None:
        if not 1 <= self.fix_working_days <= 60:
            raise ValueError(f"a fix deadline is 1 to 60 working days, got {self.fix_working_days}")
        if not 1 <= self.call_back_working_days <= self.fix_working_days:
            raise ValueError("the call-back is due within 1 working day up to the fix deadline")
