"""Events for notifications' tests, importable by name from every test file (a module of its
own: `from conftest import ...` would find whichever conftest was imported last)."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from civicgrid_common.cloudevents import CloudEvent

T0 = datetime(2026, 3, 4, 2, 15, tzinfo=timezone.utc)  # a Wednesday, 10:15 China time


def event(type_: str, data: dict[str, Any], *, subject: str = "s", id: str | None = None) -> CloudEvent:
    return CloudEvent(id=id or str(uuid.uuid4()), source="/civicgrid/tests", type=type_, subject=subject,
                      time=T0, dataschema=None, data=data)
