"""The affairs catalogue (事项目录): what the one window accepts, one aggregate per district.

An entry is an affair (affair.py: its content and the rules it must satisfy, checked when the
`Affair` is made). This aggregate keeps the entries' versions and its own rules: a code is
added once and never reused, a change must change something, two entries do not share an
Open311 service code, a retired entry takes no new version.

Entries are versioned: changing an entry makes a new version and the old ones stay readable,
because a case keeps the version it was accepted under. Retiring an entry stops new cases;
its code is never reused, so old cases still name what they were.

Rules are checked when a command is given (add, revise, retire), not when history is
replayed: a stored event is a fact, read with `affair_from_stored` (affair.py), and tightening
a rule later must not make old history unreadable.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from civicgrid_common.aggregate import Aggregate, applies
from civicgrid_common.problems import NotFound, Refusal, RuleViolation

from civicgrid_intake.domain.affair import Affair, affair_from_stored, affair_to_data

AFFAIR_ADDED = "civicgrid.intake.affair.added.v1"
AFFAIR_REVISED = "civicgrid.intake.affair.revised.v1"
AFFAIR_RETIRED = "civicgrid.intake.affair.retired.v1"

MAX_REASON_LENGTH = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class CatalogueRuleViolation(RuleViolation):
    """One of the catalogue's own rules refused a command; `field` names the member at fault as
    a path of the command's input ('code', 'affair/open311/service_code'), answered as its
    JSON pointer."""

    refusal = Refusal.INVALID

    def __init__(self, field: str | None, message: str, *, code: str = "catalogue_rule") -> None:
        # RuleViolation's own, not super(): in AffairNotFound, NotFound (another signature)
        # comes next in the method resolution order.
        RuleViolation.__init__(self, code, f"{field}: {message}" if field else message, field=field)
        self.message = message  # the detail, without the field's name


class AffairNotFound(CatalogueRuleViolation, NotFound):
    """No such entry, or none new cases may take (retired): a 404 on the catalogue's routes. It
    is a CatalogueRuleViolation too, so that a command naming an affair (a case's registration)
    refuses it as a fault of its input."""

    refusal = Refusal.NOT_FOUND

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(None, message or f"no affair {code!r} in the catalogue", code="not_found")
        self.what, self.id = "affair", code


@dataclass(frozen=True)
class AffairRevision:
    """One version of an entry, as a case refers to it: (code, version)."""

    version: int
    affair: Affair

    @property
    def code(self) -> str:
        return self.affair.code


@dataclass
class _Entry:
    revisions: list[Affair] = field(default_factory=list)
    retired_reason: str | None = None


class Catalogue(Aggregate):
    """A district's affairs catalogue (one stream; its id is the district code, e.g. 320104)."""

    stream_type = "catalogue"
    # Every change carries whole entries: a snapshot every 50 versions keeps loading short.
    snapshot_every = 50

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self._entries: dict[str, _Entry] = {}

    # ------------------------------------------------------------------ commands
    #
    # An Affair holds its own rules (it cannot be made otherwise), so these check only the
    # catalogue's. Fields are named in the command's input: the affair for an addition,
    # {reason, affair} for a revision.

    def add_affair(self, affair: Affair) -> None:
        if affair.code in self._entries:
            state = "retired (codes are never reused)" if self.is_retired(affair.code) else "already in the catalogue"
            raise CatalogueRuleViolation("code", f"affair {affair.code} is {state}")
        self._check_service_code_free(affair, "open311/service_code")
        self._emit(AFFAIR_ADDED, {"code": affair.code, "version": 1, "affair": affair_to_data(affair)})

    def revise_affair(self, affair: Affair, reason: str) -> None:
        """Publish a new version of an entry; earlier versions stay readable."""
        _check_reason(reason)
        current = self.current(affair.code)  # AffairNotFound for unknown or retired codes
        changed = changed_fields(current.affair, affair)
        if not changed:
            raise CatalogueRuleViolation("affair", f"nothing changed in {affair.code} version {current.version}")
        self._check_service_code_free(affair, "affair/open311/service_code")
        self._emit(AFFAIR_REVISED, {
            "code": affair.code, "version": current.version + 1, "affair": affair_to_data(affair),
            "changed_fields": changed, "reason": reason,
        })

    def retire_affair(self, code: str, reason: str) -> None:
        """No new cases of this affair; open cases keep their version."""
        _check_reason(reason)
        current = self.current(code)
        self._emit(AFFAIR_RETIRED, {"code": code, "last_version": current.version, "reason": reason})

    def _check_service_code_free(self, affair: Affair, field: str) -> None:
        for other in self.active():
            if other.code != affair.code and other.affair.open311.service_code == affair.open311.service_code:
                raise CatalogueRuleViolation(
                    field, f"{affair.open311.service_code!r} is already the service of {other.code}")

    # ------------------------------------------------------------------ queries

    def current(self, code: str) -> AffairRevision:
        """The version new cases get. Unknown or retired codes are refused (AffairNotFound)."""
        entry = self._entry(code)
        if entry.retired_reason is not None:
            raise AffairNotFound(code, f"affair {code} is retired: {entry.retired_reason}")
        return AffairRevision(len(entry.revisions), entry.revisions[-1])

    def revision(self, code: str, version: int) -> AffairRevision:
        """A given version, retired or not: an open case reads the version it started with."""
        entry = self._entry(code)
        if not 1 <= version <= len(entry.revisions):
            raise CatalogueRuleViolation("version", f"affair {code} has versions 1 to {len(entry.revisions)}, not {version}")
        return AffairRevision(version, entry.revisions[version - 1])

    def revisions(self, code: str) -> tuple[AffairRevision, ...]:
        entry = self._entry(code)
        return tuple(AffairRevision(i, a) for i, a in enumerate(entry.revisions, start=1))

    def is_retired(self, code: str) -> bool:
        return self._entry(code).retired_reason is not None

    def codes(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def active(self) -> tuple[AffairRevision, ...]:
        """The current version of every entry that is not retired, in the order they were added."""
        return tuple(self.current(code) for code, e in self._entries.items() if e.retired_reason is None)

    def _entry(self, code: str) -> _Entry:
        entry = self._entries.get(code)
        if entry is None:
            raise AffairNotFound(code)
        return entry

    # ------------------------------------------------------------------ state

    @applies(AFFAIR_ADDED)
    def _affair_added(self, data: Mapping[str, Any]) -> None:
        self._entries[data["code"]] = _Entry([affair_from_stored(data["affair"])])

    @applies(AFFAIR_REVISED)
    def _affair_revised(self, data: Mapping[str, Any]) -> None:
        self._entries[data["code"]].revisions.append(affair_from_stored(data["affair"]))

    @applies(AFFAIR_RETIRED)
    def _affair_retired(self, data: Mapping[str, Any]) -> None:
        self._entries[data["code"]].retired_reason = data["reason"]

    def snapshot_state(self) -> Mapping[str, Any]:
        return {"entries": [
            {"code": code, "revisions": [affair_to_data(a) for a in e.revisions], "retired_reason": e.retired_reason}
            for code, e in self._entries.items()
        ]}

    @classmethod
    def from_snapshot(cls, id: str, state: Mapping[str, Any], version: int) -> "Catalogue":
        catalogue = cls(id)
        for item in state["entries"]:
            catalogue._entries[item["code"]] = _Entry(
                [affair_from_stored(a) for a in item["revisions"]], item["retired_reason"])
        catalogue.version = version
        return catalogue


def _check_reason(reason: str) -> None:
    problem = ("must not be empty" if not reason.strip()
               else "must not start or end with spaces" if reason != reason.strip()
               else f"must be at most {MAX_REASON_LENGTH} characters" if len(reason) > MAX_REASON_LENGTH
               else "must not contain control characters" if _CONTROL.search(reason)
               else None)
    if problem is not None:
        raise CatalogueRuleViolation("reason", problem)


def changed_fields(before: Affair, after: Affair) -> list[str]:
    """The top-level fields that differ between two versions (for the revision's audit record)."""
    old, new = affair_to_data(before), affair_to_data(after)
    return [name for name in new if old.get(name) != new[name]]


# ---------------------------------------------------------------------------- seeding


class _SeedDocument(BaseModel):
    """The seed file: {"catalogue": district, "description": ..., "affairs": [affair, ...]}."""

    model_config = ConfigDict(extra="ignore")
    affairs: tuple[Affair, ...]


def affairs_from_seed(document: Any) -> tuple[Affair, ...]:
    """Parse and check a seed document: every entry as an admin's would be (pydantic's
    ValidationError names `affairs.<i>.<member>`); a code listed twice is refused too."""
    affairs = _SeedDocument.model_validate(document).affairs
    codes: set[str] = set()
    for i, affair in enumerate(affairs):
        if affair.code in codes:
            raise CatalogueRuleViolation(f"affairs/{i}/code", f"{affair.code} appears twice in the seed")
        codes.add(affair.code)
    return affairs


SEED_REVISION_REASON = "catalogue seed updated"


def seed_catalogue(catalogue: Catalogue, affairs: Sequence[Affair]) -> list[str]:
    """Bring the catalogue up to the seed through its commands; returns the codes changed.

    Idempotent: an entry equal to the seed is left alone, a differing one gets a new
    version, and a retired one stays retired (an admin retired it on purpose).
    """
    changed: list[str] = []
    for affair in affairs:
        if affair.code not in catalogue.codes():
            catalogue.add_affair(affair)
        elif catalogue.is_retired(affair.code) or catalogue.current(affair.code).affair == affair:
            continue
        else:
            catalogue.revise_affair(affair, SEED_REVISION_REASON)
        changed.append(affair.code)
    return changed
