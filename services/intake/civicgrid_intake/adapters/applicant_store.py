"""The applicant directory: applicants' personal data in intake's database, encrypted per field.

Table `applicants`, one row per applicant:

- `applicant_id`: the pseudonymous id their events carry (domain/applicant.py);
- `blind_index`: the keyed digest of the identity number (adapters/personal_data.py), UNIQUE:
  the only way to find a row from a number, and the reason two registrations of one person
  can never make two rows;
- `identity_number`, `name`, `phone`, `legal_representative`: AES-256-GCM tokens bound to the
  field and the applicant id (`pd1.<key id>.<data>`; a CHECK refuses anything else, so a
  plaintext can never be written by mistake);
- the area codes (residence, 户籍, registered address) in clear: they scope who may serve the
  applicant and are no more precise than the jurisdiction the registered event carries.

This table is not a projection: personal data are deliberately kept out of the event log
(so they can be erased without rewriting history), hence it cannot be rebuilt from the log.
It is written in the same transaction as the `applicant registered` event.

Table `applicant_contacts`, one row per applicant who chose how to be told
(domain/contact_channels.py): the email address and the WeChat openid, encrypted like the phone,
and the chosen channels in their order; written in the same transaction as the
`applicant contact channels set` event. No row: the applicant never chose (SMS to a mobile).

`applicant_history` reads the cases' and complaints' read tables, when they exist, for the
history the window shows beside the profile.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Sequence

import asyncpg

from civicgrid_common.db import install_schema
from civicgrid_common.eventstore import ConcurrencyConflict
from civicgrid_common.unit_of_work import UnitOfWork

from civicgrid_intake.adapters.personal_data import PersonalDataCipher, PersonalField
from civicgrid_intake.application.applicants import HistoryEntry, StoredApplicant
from civicgrid_intake.domain.applicant import ApplicantKind, Enterprise, IdentityKind, Profile, Resident
from civicgrid_intake.domain.contact_channels import ContactChannels

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS applicants (
    applicant_id                text        PRIMARY KEY CHECK (applicant_id ~ '^ap-[0-9a-f]{32}$'),
    kind                        text        NOT NULL CHECK (kind IN ('resident', 'enterprise')),
    blind_index                 text        NOT NULL UNIQUE CHECK (blind_index ~ '^[0-9a-f]{64}$'),
    identity_number             text        NOT NULL CHECK (identity_number LIKE 'pd1.%'),
    name                        text        NOT NULL CHECK (name LIKE 'pd1.%'),
    phone                       text        CHECK (phone LIKE 'pd1.%'),
    legal_representative        text        CHECK (legal_representative LIKE 'pd1.%'),
    household_registration_code text,
    residence_community_code    text,
    registered_address_code     text,
    registered_at               timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL,
    CONSTRAINT applicants_fields_of_kind CHECK (
        (kind = 'resident' AND household_registration_code IS NOT NULL AND residence_community_code IS NOT NULL
         AND legal_representative IS NULL AND registered_address_code IS NULL)
        OR (kind = 'enterprise' AND legal_representative IS NOT NULL AND registered_address_code IS NOT NULL
            AND phone IS NULL AND household_registration_code IS NULL AND residence_community_code IS NULL))
);

CREATE TABLE IF NOT EXISTS applicant_contacts (
    applicant_id   text        PRIMARY KEY REFERENCES applicants (applicant_id) ON DELETE CASCADE,
    email          text        CHECK (email LIKE 'pd1.%'),
    wechat_openid  text        CHECK (wechat_openid LIKE 'pd1.%'),
    channels       text[]      NOT NULL CHECK (channels <@ ARRAY['sms', 'email', 'wechat']
                                               AND cardinality(channels) <= 3),
    updated_at     timestamptz NOT NULL
);
"""

_COLUMNS = ("applicant_id, kind, identity_number, name, phone, legal_representative, household_registration_code, "
            "residence_community_code, registered_address_code, registered_at, updated_at")


class ApplicantStore:
    """ApplicantDirectory (application/applicants.py) over PostgreSQL with encrypted fields."""

    def __init__(self, cipher: PersonalDataCipher) -> None:
        self.cipher = cipher

    @staticmethod
    async def install(pool: asyncpg.Pool) -> None:
        await install_schema(pool, [SCHEMA])

    async def find_by_number(self, uow: UnitOfWork, identity_number: str, kind: IdentityKind, *,
                             for_update: bool = False) -> StoredApplicant | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await uow.conn.fetchrow(f"SELECT {_COLUMNS} FROM applicants WHERE blind_index = $1{lock}",
                                      self.cipher.blind_index(identity_number, kind))
        return None if row is None else self._stored(row)

    async def find(self, uow: UnitOfWork, applicant_id: str) -> StoredApplicant | None:
        row = await uow.conn.fetchrow(f"SELECT {_COLUMNS} FROM applicants WHERE applicant_id = $1", applicant_id)
        return None if row is None else self._stored(row)

    async def insert(self, uow: UnitOfWork, applicant_id: str, profile: Profile, at: datetime) -> StoredApplicant:
        values = self._columns(applicant_id, profile)
        try:
            # A savepoint: losing the race to a concurrent registration leaves the unit usable.
            async with uow.conn.transaction():
                row = await uow.conn.fetchrow(
                    f"""
                    INSERT INTO applicants (applicant_id, kind, blind_index, identity_number, name, phone,
                        legal_representative, household_registration_code, residence_community_code,
                        registered_address_code, registered_at, updated_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
                    RETURNING {_COLUMNS}
                    """,
                    applicant_id, profile.kind.value,
                    self.cipher.blind_index(profile.identity_number, profile.identity_kind), *values, at,
                )
        except asyncpg.UniqueViolationError:
            # Another clerk registered the same person meanwhile: the retry matches them.
            raise ConcurrencyConflict(applicant_id, 0, 1, "the applicant was registered concurrently") from None
        return self._stored(row)

    async def update(self, uow: UnitOfWork, applicant_id: str, profile: Profile, at: datetime) -> StoredApplicant:
        """A new version of the profile (fresh nonces, the current key). The number, hence the
        blind index and the id, never changes: it is what identifies the applicant."""
        row = await uow.conn.fetchrow(
            f"""
            UPDATE applicants SET identity_number = $2, name = $3, phone = $4, legal_representative = $5,
                household_registration_code = $6, residence_community_code = $7,
                registered_address_code = $8, updated_at = $9
            WHERE applicant_id = $1
            RETURNING {_COLUMNS}
            """,
            applicant_id, *self._columns(applicant_id, profile), at,
        )
        if row is None:
            raise LookupError(f"applicant {applicant_id} has no row to update")
        return self._stored(row)

    async def contact_channels(self, uow: UnitOfWork, applicant_id: str) -> ContactChannels | None:
        row = await uow.conn.fetchrow(
            "SELECT email, wechat_openid, channels FROM applicant_contacts WHERE applicant_id = $1", applicant_id)
        if row is None:
            return None
        open_ = self.cipher.decrypt
        return ContactChannels(
            email=None if row["email"] is None else open_(PersonalField.EMAIL, applicant_id, row["email"]),
            wechat_openid=(None if row["wechat_openid"] is None
                           else open_(PersonalField.WECHAT_OPENID, applicant_id, row["wechat_openid"])),
            channels=tuple(row["channels"]))

    async def set_contact_channels(self, uow: UnitOfWork, applicant_id: str, chosen: ContactChannels,
                                   at: datetime) -> None:
        seal = self.cipher.encrypt
        await uow.conn.execute(
            """
            INSERT INTO applicant_contacts (applicant_id, email, wechat_openid, channels, updated_at)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (applicant_id) DO UPDATE
                SET email = EXCLUDED.email, wechat_openid = EXCLUDED.wechat_openid,
                    channels = EXCLUDED.channels, updated_at = EXCLUDED.updated_at
            """,
            applicant_id,
            None if chosen.email is None else seal(PersonalField.EMAIL, applicant_id, chosen.email),
            None if chosen.wechat_openid is None else seal(PersonalField.WECHAT_OPENID, applicant_id,
                                                          chosen.wechat_openid),
            [str(c) for c in chosen.channels], at)

    async def history(self, uow: UnitOfWork, applicant_id: str, within: Sequence[str], *,
                      routed_to: str | None = None) -> list[HistoryEntry]:
        return await applicant_history(uow.conn, applicant_id, within=within, routed_to=routed_to)

    # ------------------------------------------------------------------ rows

    def _columns(self, applicant_id: str, profile: Profile) -> tuple[str | None, ...]:
        """identity_number, name, phone, legal_representative (encrypted), then the area codes."""
        seal = self.cipher.encrypt
        number = seal(PersonalField.IDENTITY_NUMBER, applicant_id, profile.identity_number)
        name = seal(PersonalField.NAME, applicant_id, profile.name)
        if isinstance(profile, Resident):
            phone = None if profile.phone is None else seal(PersonalField.PHONE, applicant_id, profile.phone)
            return (number, name, phone, None, profile.household_registration_code,
                    profile.residence_community_code, None)
        legal = seal(PersonalField.LEGAL_REPRESENTATIVE, applicant_id, profile.legal_representative)
        return (number, name, None, legal, None, None, profile.registered_address_code)

    def _stored(self, row: asyncpg.Record) -> StoredApplicant:
        applicant_id = row["applicant_id"]

        def open_(field: PersonalField, token: str) -> str:
            return self.cipher.decrypt(field, applicant_id, token)

        number = open_(PersonalField.IDENTITY_NUMBER, row["identity_number"])
        name = open_(PersonalField.NAME, row["name"])
        profile: Profile
        if row["kind"] == ApplicantKind.RESIDENT.value:
            phone = None if row["phone"] is None else open_(PersonalField.PHONE, row["phone"])
            profile = Resident(identity_number=number, name=name, phone=phone,
                               household_registration_code=row["household_registration_code"],
                               residence_community_code=row["residence_community_code"])
        else:
            profile = Enterprise(credit_code=number, name=name,
                                 legal_representative=open_(PersonalField.LEGAL_REPRESENTATIVE,
                                                            row["legal_representative"]),
                                 registered_address_code=row["registered_address_code"])
        return StoredApplicant(applicant_id, profile, row["registered_at"], row["updated_at"])


# ---------------------------------------------------------------------------- history

# The read tables of the cases and complaints areas, and the columns read from them. A table
# counts only if it exists with all its required columns; `case_number` is read when present.
_CASES = ("case_view", ("id", "status", "affair_code", "registered_at", "jurisdiction", "applicant_id", "departments"))
_COMPLAINTS = ("complaint_view", ("id", "status", "category", "received_at", "jurisdiction", "applicant_id",
                                  "departments"))


async def _columns_of(conn: asyncpg.Connection, tables: Sequence[str]) -> dict[str, set[str]]:
    rows = await conn.fetch(
        """
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = ANY($1::text[])
        """,
        list(tables),
    )
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["table_name"], set()).add(row["column_name"])
    return found


def _usable(table: str, required: Sequence[str], present: dict[str, set[str]]) -> bool:
    if table not in present:
        return False  # that area is not installed (yet): no history from it
    missing = [c for c in required if c not in present[table]]
    if missing:
        log.warning("%s lacks columns %s; the applicants' history leaves it out", table, ", ".join(missing))
        return False
    return True


async def applicant_history(conn: asyncpg.Connection, applicant_id: str, *,
                            within: Sequence[str] | None = None, routed_to: str | None = None) -> list[HistoryEntry]:
    """The applicant's earlier cases and complaints, newest first.

    Reads `case_view(id, status, affair_code, registered_at, jurisdiction, applicant_id
    [, case_number])` and `complaint_view(id, status, category, received_at, jurisdiction,
    applicant_id)` if those tables exist (in the connection's current schema), else leaves
    them out. With `within` (jurisdiction codes), only entries whose jurisdiction lies inside
    one of them: a clerk of one street sees nothing of another's cases. With `routed_to` (a
    department), only entries routed to that department.
    """
    present = await _columns_of(conn, [_CASES[0], _COMPLAINTS[0]])
    scope = list(within) if within is not None else None
    entries: list[HistoryEntry] = []
    if _usable(*_CASES, present):
        number = "case_number" if "case_number" in present[_CASES[0]] else "NULL::text"
        rows = await conn.fetch(
            f"""
            SELECT id, status, affair_code, registered_at, {number} AS case_number FROM case_view
            WHERE applicant_id = $1
              AND ($2::text[] IS NULL OR EXISTS (SELECT 1 FROM unnest($2::text[]) j
                                                 WHERE starts_with(jurisdiction, j)))
              AND ($3::text IS NULL OR $3 = ANY(departments))
            """,
            applicant_id, scope, routed_to,
        )
        entries += [HistoryEntry("case", r["id"], r["status"], r["affair_code"], r["registered_at"],
                                 r["case_number"]) for r in rows]
    if _usable(*_COMPLAINTS, present):
        rows = await conn.fetch(
            """
            SELECT id, status, category, received_at FROM complaint_view
            WHERE applicant_id = $1
              AND ($2::text[] IS NULL OR EXISTS (SELECT 1 FROM unnest($2::text[]) j
                                                 WHERE starts_with(jurisdiction, j)))
              AND ($3::text IS NULL OR $3 = ANY(departments))
            """,
            applicant_id, scope, routed_to,
        )
        entries += [HistoryEntry("complaint", r["id"], r["status"], r["category"], r["received_at"])
                    for r in rows]
    entries.sort(key=lambda e: (e.at, e.kind, e.id), reverse=True)
    return entries
