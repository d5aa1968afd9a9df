"""The one clock convention: instants are timezone-aware UTC in the application layer and in
storage; a local date (China's, for due dates and receipts) is computed in the domain from an
explicit zone (calendar.working_days.local_date). A service's clock is injected, so tests and the
demo can set the time."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
