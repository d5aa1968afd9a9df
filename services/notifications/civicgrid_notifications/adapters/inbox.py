"""The in-app inbox (站内信): items addressed to a person (their token subject) or to the holders
of a role in a jurisdiction (a street's reviewers, a grid's workers, a community's leaders).

Who holds a role is not ours to know (the identity provider does); a token says it. So an item
to "street reviewers of 320104001" is one row, and everyone signed in with that role and a
jurisdiction that covers the code (a prefix of it) sees it; whether they read it is theirs
alone (a row in inbox_reads). New items are announced on PostgreSQL's NOTIFY channel `inbox`
in the writing transaction (sent at its commit), which the live stream of every replica
listens on.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

import asyncpg

from civicgrid_common.identity.principal import Principal

INBOX_DDL = """
CREATE TABLE IF NOT EXISTS inbox_items (
    id bigserial PRIMARY KEY,
    delivery_id text NOT NULL UNIQUE REFERENCES notification_deliveries (id),
    address_kind text NOT NULL CHECK (address_kind IN ('user', 'role')),
    address text NOT NULL,
    jurisdiction text,
    event_type text NOT NULL,
    urgent boolean NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    link text,
    created_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_items_user ON inbox_items (address, id DESC) WHERE address_kind = 'user';
CREATE INDEX IF NOT EXISTS inbox_items_role ON inbox_items (address, jurisdiction text_pattern_ops, id DESC)
    WHERE address_kind = 'role';
-- From a rule marked digest: a person who takes digests gets it in their next digest, not pushed alone.
ALTER TABLE inbox_items ADD COLUMN IF NOT EXISTS digest boolean NOT NULL DEFAULT false;
CREATE TABLE IF NOT EXISTS inbox_reads (
    item_id bigint NOT NULL REFERENCES inbox_items (id),
    subject text NOT NULL,
    read_at timestamptz NOT NULL,
    PRIMARY KEY (item_id, subject)
);
"""

NOTIFY_CHANNEL = "inbox"


@dataclass(frozen=True)
class InboxItem:
    id: int
    event_type: str
    urgent: bool
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None
    digest: bool = False  # from a rule marked digest


async def deliver(conn: asyncpg.Connection, *, delivery_id: str, address_kind: str, address: str,
                  jurisdiction: str | None, event_type: str, urgent: bool, title: str, body: str,
                  link: str | None, at: datetime, digest: bool = False) -> int:
    item_id = await conn.fetchval(
        """
        INSERT INTO inbox_items (delivery_id, address_kind, address, jurisdiction, event_type, urgent, title, body,
                                 link, created_at, digest)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id
        """,
        delivery_id, address_kind, address, jurisdiction, event_type, urgent, title, body, link, at, digest)
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(item_id))
    return item_id


# An item is the principal's if addressed to their subject, or to one of their roles in a
# jurisdiction one of their codes covers.
_VISIBLE = """
    ((i.address_kind = 'user' AND i.address = $1)
     OR (i.address_kind = 'role' AND i.address = ANY($2::text[])
         AND EXISTS (SELECT 1 FROM unnest($3::text[]) AS code WHERE starts_with(i.jurisdiction, code))))
"""


def _who(principal: Principal) -> tuple[str, list[str], list[str]]:
    return principal.subject, sorted(r.value for r in principal.roles), list(principal.jurisdictions)


async def items_for(conn: asyncpg.Connection, principal: Principal, *, limit: int, before: int | None = None,
                    after: int | None = None, unread_only: bool = False) -> list[InboxItem]:
    """The principal's items, newest first (`before` an id: older ones; `after`: newer ones,
    oldest first, for a stream catching up)."""
    rows = await conn.fetch(
        f"""
        SELECT i.id, i.event_type, i.urgent, i.title, i.body, i.link, i.created_at, r.read_at, i.digest
        FROM inbox_items i LEFT JOIN inbox_reads r ON r.item_id = i.id AND r.subject = $1
        WHERE {_VISIBLE}
          AND ($5::bigint IS NULL OR i.id < $5) AND ($6::bigint IS NULL OR i.id > $6)
          AND (NOT $7 OR r.read_at IS NULL)
        ORDER BY CASE WHEN $6::bigint IS NULL THEN -i.id ELSE i.id END
        LIMIT $4
        """,
        *_who(principal), limit, before, after, unread_only)
    return [InboxItem(**dict(r)) for r in rows]


async def unread_count(conn: asyncpg.Connection, principal: Principal) -> int:
    return await conn.fetchval(
        f"""
        SELECT count(*) FROM inbox_items i
        WHERE {_VISIBLE} AND NOT EXISTS (SELECT 1 FROM inbox_reads r WHERE r.item_id = i.id AND r.subject = $1)
        """, *_who(principal))


async def mark_read(conn: asyncpg.Connection, principal: Principal, item_id: int, *, at: datetime) -> datetime | None:
    """When the principal read the item (now, or earlier); None if it is not theirs to see."""
    visible = await conn.fetchval(f"SELECT true FROM inbox_items i WHERE i.id = $4 AND {_VISIBLE}",
                                  *_who(principal), item_id)
    if not visible:
        return None
    await conn.execute("INSERT INTO inbox_reads (item_id, subject, read_at) VALUES ($1, $2, $3) "
                       "ON CONFLICT DO NOTHING", item_id, principal.subject, at)
    return await conn.fetchval("SELECT read_at FROM inbox_reads WHERE item_id = $1 AND subject = $2",
                               item_id, principal.subject)


async def visible_ids(conn: asyncpg.Connection, principal: Principal, ids: Sequence[int]) -> list[int]:
    rows = await conn.fetch(f"SELECT i.id FROM inbox_items i WHERE i.id = ANY($4::bigint[]) AND {_VISIBLE} "
                            "ORDER BY i.id", *_who(principal), list(ids))
    return [r["id"] for r in rows]


async def digestible(conn: asyncpg.Connection, *, subject: str, roles: Sequence[str], jurisdictions: Sequence[str],
                     after: datetime, until: datetime, limit: int) -> tuple[list[tuple[int, str]], int]:
    """A person's unread items of digest rules (never urgent ones) created in (after, until], as
    the roles and jurisdictions they hold see them: the first `limit` (id, title), oldest first,
    and how many there are."""
    rows = await conn.fetch(
        f"""
        SELECT i.id, i.title, count(*) OVER () AS total FROM inbox_items i
        WHERE {_VISIBLE} AND i.digest AND NOT i.urgent AND i.created_at > $4 AND i.created_at <= $5
          AND NOT EXISTS (SELECT 1 FROM inbox_reads r WHERE r.item_id = i.id AND r.subject = $1)
        ORDER BY i.id LIMIT $6
        """,
        subject, sorted(roles), list(jurisdictions), after, until, limit)
    return [(r["id"], r["title"]) for r in rows], (rows[0]["total"] if rows else 0)


class InboxStore:
    """The inbox as the application's `Inbox` port."""

    deliver = staticmethod(deliver)
    digestible = staticmethod(digestible)
