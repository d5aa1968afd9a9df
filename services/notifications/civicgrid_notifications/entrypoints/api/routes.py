"""notifications over HTTP (JWT). Everyone signed in has an inbox; the district's admin keeps
the rule book, the departments' webhook endpoints and the dead letters.

Inbox (站内信)
GET  /v1/inbox                         my items, newest first (?before=&limit=&unread_only=)
POST /v1/inbox/{item_id}/read          mark one read
GET  /v1/inbox/stream                  my new items as they arrive (server-sent events; Last-Event-ID)
GET  /v1/me/preferences                how I am told: in-app items at once, or gathered into a digest per period
PUT  /v1/me/preferences                set it (the digest gathers the items of my token's roles and jurisdictions)
Rule book (the district's admin)
GET  /v1/rule-book                     every rule and template with its version
PUT  /v1/rules/{rule_id}               set a rule (a new version when it changed); DELETE removes it
PUT  /v1/templates/{name}              set a template, rendered first on the sample events it names
Departments' webhooks and deliveries (the district's admin)
PUT  /v1/departments/{department}/webhook          set the endpoint (its first secret shown once)
GET  /v1/departments/{department}/webhook          the endpoint, without its secrets
POST /v1/departments/{department}/webhook/rotate   a new secret; the old ones verify for the grace period
GET  /v1/deliveries/dead-letters       deliveries that ran out of attempts, newest first
GET  /v1/deliveries/{delivery_id}      a delivery with every attempt
POST /v1/deliveries/{delivery_id}/replay   try a dead-lettered delivery again
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, AsyncIterator

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from sse_starlette.sse import EventSourceResponse

from civicgrid_common.identity import Principal, Role
from civicgrid_common.identity.dependencies import require
from civicgrid_common.problems import NotFound, Refusal, RuleViolation
from civicgrid_common.web.models import Instant, QueryFlag

from civicgrid_notifications.adapters import inbox as inbox_table
from civicgrid_notifications.adapters import ledger
from civicgrid_notifications.adapters.live import FellBehind
from civicgrid_notifications.adapters.webhooks import UnsafeWebhookUrl, check_webhook_url
from civicgrid_notifications.domain.preferences import Preferences, next_period_end
from civicgrid_notifications.entrypoints.api import models as m

RuleId = Annotated[str, Path(max_length=64, pattern=r"^[a-z][a-z0-9_.-]{0,63}$", description="the rule's id")]
TemplateName = Annotated[str, Path(max_length=64, pattern=r"^[a-z][a-z0-9_.-]{0,63}$", description="the template's name")]
Department = Annotated[str, Path(max_length=40, pattern=r"^[a-z][a-z0-9_]{1,39}$", description="the department's slug")]
DeliveryId = Annotated[str, Path(max_length=36, pattern=r"^msg_[0-9a-f]{32}$", description="the delivery's id")]
ItemId = Annotated[int, Path(ge=1, le=2**62, description="the inbox item's id")]

signed_in = Depends(require())


class UnsafeUrl(RuleViolation):
    refusal = Refusal.INVALID

admin = Depends(require(Role.ADMIN))


def _svc(request: Request):
    return request.app.state.notifications


def _now(request: Request) -> datetime:
    return request.app.state.clock()


def _item(item: inbox_table.InboxItem) -> m.InboxItemOut:
    return m.InboxItemOut(**item.__dict__)


def _check_admin(request: Request, who: Principal) -> None:
    _svc(request).check_admin(who)


def inbox_router() -> APIRouter:
    router = APIRouter(prefix="/v1/inbox", tags=["inbox"])

    @router.get("", response_model=m.InboxOut, summary="my inbox")
    async def my_inbox(request: Request, who: Principal = signed_in,
                       before: Annotated[int | None, Query(ge=1, le=2**62, description="items older than this id")] = None,
                       limit: Annotated[int, Query(ge=1, le=100)] = 20,
                       unread_only: Annotated[QueryFlag, Query()] = False) -> m.InboxOut:
        async with request.app.state.pool.acquire() as conn:
            items = await inbox_table.items_for(conn, who, limit=limit + 1, before=before, unread_only=unread_only)
            unread = await inbox_table.unread_count(conn, who)
        page, more = items[:limit], len(items) > limit
        return m.InboxOut(items=[_item(i) for i in page], unread=unread, next_before=page[-1].id if more else None)

    @router.post("/{item_id}/read", response_model=m.ReadOut, summary="mark an item read")
    async def read(request: Request, item_id: ItemId, who: Principal = signed_in) -> m.ReadOut:
        async with request.app.state.pool.acquire() as conn:
            read_at = await inbox_table.mark_read(conn, who, item_id, at=_now(request))
        if read_at is None:
            raise NotFound("inbox item", str(item_id))
        return m.ReadOut(id=item_id, read_at=read_at)

    @router.get("/stream", summary="my new items, live (text/event-stream)",
                responses={200: {"content": {"text/event-stream": {}},
                                 "description": "`event: item` with the item as JSON, `id:` its id"}})
    async def stream(request: Request, who: Principal = signed_in,
                     last_event_id: Annotated[str | None, Header(max_length=20, pattern=r"^[0-9]{1,19}$")] = None,
                     ) -> EventSourceResponse:
        broadcaster = request.app.state.broadcaster
        keepalive = request.app.state.settings.inbox_stream_keepalive_seconds

        # A person who takes digests is not pushed the items of digest rules one by one: their
        # digest is (read when the stream opens: a change applies from the next connection).
        digests = (await request.app.state.preferences.of(who.subject)).digests

        def pushed(item: inbox_table.InboxItem) -> bool:
            return not (digests and item.digest and not item.urgent)

        async def events() -> AsyncIterator[dict[str, Any]]:
            async with broadcaster.subscribe(who) as subscription:
                if last_event_id is not None:  # what the client missed while away, oldest first
                    async with request.app.state.pool.acquire() as conn:
                        missed = await inbox_table.items_for(conn, who, limit=100, after=int(last_event_id))
                    for item in filter(pushed, missed):
                        yield _sse(item)
                while not await request.is_disconnected():
                    try:
                        item = await subscription.next(timeout=1.0)
                    except FellBehind:
                        yield {"event": "reconnect", "data": "{}", "retry": 1000}
                        return
                    if item is not None and pushed(item):
                        yield _sse(item)

        return EventSourceResponse(events(), ping=int(keepalive))

    return router


def _sse(item: inbox_table.InboxItem) -> dict[str, Any]:
    return {"event": "item", "id": str(item.id), "data": _item(item).model_dump_json()}


def _preferences(p: Preferences, changed: bool | None = None) -> m.PreferencesOut:
    nxt = next_period_end(p.digest_since, p.choice.every_minutes) if p.digests and p.digest_since else None
    return m.PreferencesOut(
        subject=p.subject, in_app=m.InAppPreferenceOut(delivery=p.choice.in_app.value,
                                                       every_minutes=p.choice.every_minutes),
        roles=list(p.roles), jurisdictions=list(p.jurisdictions), digest_since=p.digest_since,
        next_digest_at=nxt, version=p.version, changed=changed)


def preferences_router() -> APIRouter:
    router = APIRouter(prefix="/v1/me/preferences", tags=["preferences"])

    @router.get("", response_model=m.PreferencesOut, summary="how I am told")
    async def mine(request: Request, who: Principal = signed_in) -> m.PreferencesOut:
        return _preferences(await request.app.state.preferences.of(who.subject))

    @router.put("", response_model=m.PreferencesOut, summary="set how I am told")
    async def choose(request: Request, body: m.PreferencesIn, who: Principal = signed_in) -> m.PreferencesOut:
        preferences, changed = await request.app.state.preferences.choose(who, body.model_dump())
        return _preferences(preferences, changed)

    return router


def rule_book_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["rule book"])

    @router.get("/rule-book", response_model=m.RuleBookOut, summary="the district's rules and templates")
    async def rule_book(request: Request, who: Principal = admin) -> m.RuleBookOut:
        _check_admin(request, who)
        book = await _svc(request).book()
        return m.RuleBookOut(
            district=_svc(request).district, version=book.version,
            rules=[m.RuleOut(id=i, version=v, rule=r.to_dict()) for i, (r, v) in sorted(book.rules.items())],
            templates=[m.TemplateOut(name=n, version=v, template=t.to_dict())
                       for n, (t, v) in sorted(book.templates.items())])

    @router.put("/rules/{rule_id}", response_model=m.RuleSetOut, summary="set a rule")
    async def set_rule(request: Request, rule_id: RuleId, body: m.RuleIn, who: Principal = admin) -> m.RuleSetOut:
        rule, version, changed = await _svc(request).set_rule(who, rule_id, body.model_dump(exclude_none=True))
        return m.RuleSetOut(id=rule.id, version=version, rule=rule.to_dict(), changed=changed)

    @router.delete("/rules/{rule_id}", status_code=204, summary="remove a rule")
    async def remove_rule(request: Request, rule_id: RuleId, who: Principal = admin) -> Response:
        await _svc(request).remove_rule(who, rule_id)
        return Response(status_code=204)

    @router.put("/templates/{name}", response_model=m.TemplateOut, summary="set a template")
    async def set_template(request: Request, name: TemplateName, body: m.TemplateIn,
                           who: Principal = admin) -> m.TemplateOut:
        raw = {"variants": {locale: v.model_dump(exclude_none=True) for locale, v in body.variants.items()}}
        template, version, changed = await _svc(request).set_template(who, name, raw, body.event_types)
        return m.TemplateOut(name=name, version=version, template=template.to_dict(), changed=changed)

    return router


def _endpoint(endpoint, secret: str | None = None) -> m.EndpointOut:
    return m.EndpointOut(department=endpoint.department, url=endpoint.url, allow_private=endpoint.allow_private,
                         enabled=endpoint.enabled, disabled_reason=endpoint.disabled_reason,
                         active_secrets=len(endpoint.secrets), unreadable_secrets=endpoint.unreadable,
                         updated_by=endpoint.updated_by,
                         updated_at=endpoint.updated_at, secret=secret)


def _delivery(d: ledger.Delivery, history: list | None = None) -> m.DeliveryOut:
    fields = {k: v for k, v in d.__dict__.items() if k != "message"}
    return m.DeliveryOut(**fields, history=[m.AttemptOut(**dict(a)) for a in history or ()])


def delivery_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["departments and deliveries"])

    @router.put("/departments/{department}/webhook", response_model=m.EndpointOut, summary="set a department's webhook")
    async def put_endpoint(request: Request, department: Department, body: m.EndpointIn,
                           who: Principal = admin) -> m.EndpointOut:
        _check_admin(request, who)
        if department not in request.app.state.departments:
            raise NotFound("department", department)
        try:
            await check_webhook_url(body.url, allow_private=body.allow_private)
        except UnsafeWebhookUrl as exc:
            raise UnsafeUrl("unsafe_webhook_url", str(exc), field="url") from None
        endpoint, secret = await request.app.state.endpoints.put(
            department, body.url, allow_private=body.allow_private, by=who.subject, now=_now(request))
        return _endpoint(endpoint, secret)

    @router.get("/departments/{department}/webhook", response_model=m.EndpointOut, summary="a department's webhook")
    async def get_endpoint(request: Request, department: Department, who: Principal = admin) -> m.EndpointOut:
        _check_admin(request, who)
        endpoint = await request.app.state.endpoints.get(department, now=_now(request))
        if endpoint is None:
            raise NotFound("webhook endpoint of", department)
        return _endpoint(endpoint)

    @router.post("/departments/{department}/webhook/rotate", response_model=m.EndpointOut,
                 summary="rotate a department's signing secret")
    async def rotate(request: Request, department: Department, body: m.RotateIn,
                     who: Principal = admin) -> m.EndpointOut:
        _check_admin(request, who)
        endpoints = request.app.state.endpoints
        secret = await endpoints.rotate(department, grace=timedelta(hours=body.grace_hours), by=who.subject,
                                        now=_now(request))
        if secret is None:
            raise NotFound("webhook endpoint of", department)
        return _endpoint(await endpoints.get(department, now=_now(request)), secret)

    @router.get("/deliveries/dead-letters", response_model=list[m.DeliveryOut], summary="dead-lettered deliveries")
    async def dead_letters(request: Request, who: Principal = admin,
                           before: Annotated[Instant | None, Query(description="finished before this instant")] = None,
                           limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[m.DeliveryOut]:
        _check_admin(request, who)
        async with request.app.state.pool.acquire() as conn:
            return [_delivery(d) for d in await ledger.dead_letters(conn, limit=limit, before=before)]

    @router.get("/deliveries/{delivery_id}", response_model=m.DeliveryOut, summary="a delivery and its attempts")
    async def delivery(request: Request, delivery_id: DeliveryId, who: Principal = admin) -> m.DeliveryOut:
        _check_admin(request, who)
        async with request.app.state.pool.acquire() as conn:
            found = await ledger.get(conn, delivery_id)
            if found is None:
                raise NotFound("delivery", delivery_id)
            return _delivery(found, list(await ledger.attempts_of(conn, delivery_id)))

    @router.post("/deliveries/{delivery_id}/replay", response_model=m.DeliveryOut, summary="replay a dead letter")
    async def replay(request: Request, delivery_id: DeliveryId, who: Principal = admin) -> m.DeliveryOut:
        _check_admin(request, who)
        async with request.app.state.pool.acquire() as conn:
            if not await ledger.replay(conn, delivery_id, now=_now(request)):
                if await ledger.get(conn, delivery_id) is None:
                    raise NotFound("delivery", delivery_id)
                raise RuleViolation("not_dead", "only a dead-lettered or disabled webhook delivery is replayed")
            return _delivery(await ledger.get(conn, delivery_id))

    return router


def notifications_routers() -> list[APIRouter]:
    return [inbox_router(), preferences_router(), rule_book_router(), delivery_router()]
