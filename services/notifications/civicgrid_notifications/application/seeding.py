"""The demo district's rule book, set on first start (and again on each start: setting an
unchanged rule or template records nothing, a changed one a new version)."""
from __future__ import annotations

from typing import Any, Mapping

from civicgrid_common.identity.principal import Principal, Role

from civicgrid_notifications.application.notify import NotificationService

SEEDER = "system:notifications-seed"


async def seed_rule_book(notifications: NotificationService, document: Mapping[str, Any]) -> int:
    """Set every template, then every rule, of `document`; how many changed."""
    seeder = Principal(subject=SEEDER, roles=frozenset({Role.ADMIN}), jurisdictions=(notifications.district,))
    changed = 0
    for template in document.get("templates", ()):
        raw = {k: v for k, v in template.items() if k not in ("name", "event_types")}
        *_, did = await notifications.set_template(seeder, template["name"], raw, template["event_types"])
        changed += did
    for rule in document.get("rules", ()):
        *_, did = await notifications.set_rule(seeder, rule["id"], {k: v for k, v in rule.items() if k != "id"})
        changed += did
    return changed
