"""Transactional outbox: rows written with the events (records.py), published to Kafka by the
relay (relay.py, also `python -m civicgrid_common.outbox.relay`)."""
from __future__ import annotations

from typing import Any

from civicgrid_common.outbox.records import record_for, write_outbox
from civicgrid_common.outbox.schema import OUTBOX_DDL

__all__ = ["OUTBOX_DDL", "OutboxRelay", "record_for", "write_outbox"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m civicgrid_common.outbox.relay` does not import the
    # relay module twice (once as a package attribute, once as __main__).
    if name == "OutboxRelay":
        from civicgrid_common.outbox.relay import OutboxRelay

        return OutboxRelay
    raise AttributeError(name)
