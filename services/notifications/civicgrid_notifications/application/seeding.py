"""The demo district's rule book, set on first start and renewed on each start: a rule or template
the seed set last is set again (unchanged: nothing recorded; changed in a new release: a new
version), but one the district's admin changed or removed since is the admin's and stays so.
(Renewing everything on each start undid an admin's edit at the next restart.)"""
from __future__ import annotations

import logging
from typing import Any, Mapping

from civicgrid_common.identity.principal import Principal, Role

from civicgrid_notifications.application.notify import NotificationService
from civicgrid_notifications.domain.rules import RuleRejected

SEEDER = "system:notifications-seed"

log = logging.getLogger(__name__)


async def seed_rule_book(notifications: NotificationService, document: Mapping[str, Any]) -> int:
    """Set every template, then every rule, of `document` that nobody but the seed changed;
    how many changed."""
    seeder = Principal(subject=SEEDER, roles=frozenset({Role.ADMIN}), jurisdictions=(notifications.district,))
    book = await notifications.book()

    def the_admins(kind: str, name: str) -> bool:
        by = book.changed_by(kind, name)
        if by in (None, SEEDER):
            return False
        log.info("seeding kept the %s %r as %s changed it", kind, name, by)
        return True

    changed = 0
    for template in document.get("templates", ()):
        if the_admins("template", template["name"]):
            continue
        raw = {k: v for k, v in template.items() if k not in ("name", "event_types")}
        *_, did = await notifications.set_template(seeder, template["name"], raw, template["event_types"])
        changed += did
    for rule in document.get("rules", ()):
        if the_admins("rule", rule["id"]):
            continue
        try:
            *_, did = await notifications.set_rule(seeder, rule["id"], {k: v for k, v in rule.items() if k != "id"})
        except RuleRejected as exc:
            # The admin's version of its template lacks a channel the seed's rule sends on: the
            # admin's template stands, and so does the rule as it was.
            log.warning("seeding left the rule %r as it was: %s", rule["id"], exc)
            continue
        changed += did
    return changed
