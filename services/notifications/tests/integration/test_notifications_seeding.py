"""The seeded rule book across restarts, on the real database: what the seed set it renews, what
the district's admin changed or removed stays as the admin left it (a restart used to undo it)."""
from __future__ import annotations

from civicgrid_notifications.application.seeding import SEEDER, seed_rule_book
from civicgrid_notifications.config import NotificationsSettings
from civicgrid_notifications.domain.seed import seed_document
from civicgrid_notifications.entrypoints.main import build_app

NEW_ITEM, SURGE, GREEN = "approval-new-item", "community-alert", "approval-green-channel"


async def restarted(fresh_db, clock):
    """The service started again on the same database (its lifespan seeds the book)."""
    settings = NotificationsSettings(pg_database=fresh_db.pg_database, outbox_relay=False, consume=False, send=False,
                                    timers=False)
    app = build_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        return await app.state.notifications.book()


async def test_a_restart_keeps_the_admins_changes_and_renews_only_the_seeds_own(api, token, notifications_app,
                                                                              fresh_db, clock):
    admin = token("admin", "320104", subject="admin-zhang")
    seeded = next(r for r in seed_document()["rules"] if r["id"] == NEW_ITEM)
    quieter = {k: v for k, v in seeded.items() if k != "id"} | {"digest": False, "enabled": False}
    assert (await api.put(f"/v1/rules/{NEW_ITEM}", json=quieter, headers=admin)).json()["version"] == 2
    assert (await api.delete(f"/v1/rules/{SURGE}", headers=admin)).status_code == 204
    before = (await notifications_app.state.notifications.book()).version

    after = await restarted(fresh_db, clock)
    assert after.version == before  # the restart's seeding recorded nothing
    kept, version = after.rules[NEW_ITEM]
    assert (version, kept.enabled, kept.digest) == (2, False, False)
    assert after.changed_by("rule", NEW_ITEM) == "admin-zhang"
    assert SURGE not in after.rules  # removed by the admin: not seeded again
    assert after.changed_by("rule", GREEN) == SEEDER and after.rules[GREEN][1] == 1  # the seed's, unchanged


async def test_seeding_twice_records_nothing_the_second_time(notifications_app):
    service = notifications_app.state.notifications
    before = (await service.book()).version
    assert await seed_rule_book(service, seed_document()) == 0
    assert (await service.book()).version == before
