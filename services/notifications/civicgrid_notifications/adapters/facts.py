"""The facts notifications remembers about cases and incidents (domain/facts.py), one row per
case or incident, written in the consumer's inbox transaction of the event that told them."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

import asyncpg

FACTS_DDL = """
CREATE TABLE IF NOT EXISTS notification_subject_facts (
    subject text PRIMARY KEY,
    facts jsonb NOT NULL,
    updated_at timestamptz NOT NULL
)
"""


class SubjectFacts:
    async def remember(self, conn: asyncpg.Connection, subject: str, facts: Mapping[str, Any], *,
                       at: datetime) -> None:
        """Keep `facts` about `subject`, beside what is known of it already (a redelivered event
        writes the same facts again: no harm)."""
        await conn.execute(
            """
            INSERT INTO notification_subject_facts AS f (subject, facts, updated_at) VALUES ($1, $2::jsonb, $3)
            ON CONFLICT (subject) DO UPDATE SET facts = f.facts || EXCLUDED.facts, updated_at = EXCLUDED.updated_at
            """,
            subject, dict(facts), at,  # the pool's jsonb codec encodes it
        )

    async def about(self, conn: asyncpg.Connection, subject: str) -> dict[str, Any]:
        value = await conn.fetchval("SELECT facts FROM notification_subject_facts WHERE subject = $1", subject)
        return dict(value) if value else {}
