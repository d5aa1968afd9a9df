"""A case with its approvals and their seals, joined from intake and approval (pure: no I/O).

The window clerk, the reviewer and the auditor look at one affair; intake holds the case and
approval holds its multi-level approval, every move sealed. The gateway asks each service with
the caller's own token, so each service still decides what this caller may see; what one of
them did not give (it was down, or it refused this caller) is said in `missing`, and the case
is still shown: a clerk at the window is not turned away because approval is restarting."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

# The approvals of one case shown at most (a case has one, or a few after a send-back).
MAX_APPROVALS = 20


@dataclass(frozen=True)
class Answer:
    """What one service answered: its status and JSON body, or None if it did not answer."""

    status: int | None
    body: Any = None
    reason: str | None = None  # why there is no answer (the service's circuit is open, ...)

    @property
    def ok(self) -> bool:
        return self.status == 200 and isinstance(self.body, dict)


def _missing(part: str, service: str, answer: Answer) -> dict[str, Any]:
    if answer.status is None:
        why = f"the {service} service is not answering ({answer.reason or 'no answer'})"
    elif answer.status in (401, 403):
        why = f"the {service} service does not show it to this caller"
    else:
        title = answer.body.get("title") if isinstance(answer.body, dict) else None
        why = f"the {service} service answered {answer.status}" + (f" ({title})" if title else "")
    return {"part": part, "service": service, "status": answer.status, "detail": why}


def approval_ids(listing: Answer, case_id: str) -> list[str]:
    """The approvals of this case in approval's listing (newest first, as it lists them)."""
    if not listing.ok or not isinstance(listing.body.get("items"), list):
        return []
    return [row["id"] for row in listing.body["items"][:MAX_APPROVALS]
            if isinstance(row, dict) and row.get("case_id") == case_id and isinstance(row.get("id"), str)]


def case_file(case_id: str, case: Mapping[str, Any], listing: Answer,
              approvals: Sequence[tuple[str, Answer, Answer]]) -> dict[str, Any]:
    """The joined view. `approvals`: per approval id, approval's answers to the approval itself
    (its moves, each with its seal, and its conclusion) and to its verification (hash chain,
    seals' signatures, archive)."""
    missing: list[dict[str, Any]] = []
    shown: list[dict[str, Any]] | None
    if not listing.ok:
        shown = None
        missing.append(_missing("approvals", "approval", listing))
    else:
        shown = []
        for approval_id, approval, verification in approvals:
            if not approval.ok:
                missing.append(_missing(f"approvals/{approval_id}", "approval", approval))
                continue
            if not verification.ok:
                missing.append(_missing(f"approvals/{approval_id}/verification", "approval", verification))
            shown.append({"approval": approval.body, "verification": verification.body if verification.ok else None})
    return {"case_id": case_id, "case": dict(case), "approvals": shown, "missing": missing}
