"""Noticing a consumer that silently stopped consuming.

aiokafka has known cases where a group member stays alive but receives nothing, without an
error: after a broker restart or a rebalance its coordinator may never rejoin the group
(aio-libs/aiokafka#1154: `_coordinator._rejoin_needed_fut` stays done while
`ensure_active_group` keeps declining to rejoin because the fetcher looks idle for longer than
max_poll_interval_ms), a member holding no partitions can be locked out for the same reason
(#1187, #720), and a member can stay stuck after a session expiry and group rejoin (#847).
There is no public health signal, so the runtime watches the outcome instead: records waiting
(lag > 0), or partitions nobody in the group holds, and no progress for a while. Then it
recreates the consumer.

`StallDetector` is the pure decision; the runtime feeds it observations.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

LAG_WITHOUT_PROGRESS = "lag_without_progress"
PARTITIONS_UNASSIGNED = "partitions_unassigned"


@dataclass(frozen=True)
class Observation:
    now: float  # monotonic seconds
    assigned_partitions: int
    lag: int | None  # total over the assignment; None if the broker could not be asked
    partitions_held_by_group: int | None = None  # None if not asked
    partitions_total: int | None = None


class StallDetector:
    """Decides from observations whether the consumer is stalled (and why)."""

    def __init__(self, stall_after: float, now: float) -> None:
        if stall_after <= 0:
            raise ValueError("stall_after must be positive")
        self.stall_after = stall_after
        self.last_progress = now

    def progress(self, now: float) -> None:
        self.last_progress = max(self.last_progress, now)

    def idle_for(self, now: float) -> float:
        return now - self.last_progress

    def check(self, obs: Observation) -> str | None:
        """The reason the consumer counts as stalled, or None if it is healthy or may still be."""
        if obs.assigned_partitions and obs.lag == 0:
            self.progress(obs.now)  # caught up: nothing to do is not a stall
            return None
        if self.idle_for(obs.now) < self.stall_after:
            return None
        if obs.assigned_partitions and obs.lag is not None and obs.lag > 0:
            return LAG_WITHOUT_PROGRESS
        if (
            not obs.assigned_partitions
            and obs.partitions_total
            and obs.partitions_held_by_group is not None
            and obs.partitions_held_by_group < obs.partitions_total
        ):
            return PARTITIONS_UNASSIGNED
        # Lag unknown (broker unreachable): recreating the consumer cannot help until the
        # broker answers again; aiokafka reconnects by itself, and we look again then.
        return None


async def partitions_held(admin: AIOKafkaAdminClient, group_id: str, topics: Iterable[str]) -> int:
    """How many partitions of `topics` the members of the group currently hold, per the broker."""
    wanted = set(topics)
    held = 0
    for response in await admin.describe_consumer_groups([group_id]):
        for group in response.groups:
            members = group[5]
            for member in members:
                raw = member[4]
                if not raw:
                    continue
                assignment = ConsumerProtocolMemberAssignment.decode(raw)
                held += sum(1 for tp in assignment.partitions() if tp.topic in wanted)
    return held
