"""Resident API for mutual aid ("Call 4 Help") and crisis alerts."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from coopnet.node.aid.requests import Aid
from coopnet.node.engine.accounts import Accounts, Principal
from coopnet.node.engine.auth import COORDINATOR, RESIDENT, principal_of
from coopnet.node.engine.idempotency import once
from coopnet.node.engine.refusals import Refused
from coopnet.protocol.aid import Advice as AdviceText
from coopnet.protocol.aid import (
    AidCategory,
    AlertKind,
    Count,
    Description,
    Severity,
    Urgency,
    What,
)
from coopnet.protocol.body import AreaCode
from coopnet.protocol.offers import LocalId
from coopnet.protocol.trades import Slug


class RequestIn(msgspec.Struct, kw_only=True):
    category: AidCategory
    urgency: Urgency
    quantity: Count
    description: Description
    needed_in_minutes: Annotated[int, msgspec.Meta(ge=1, le=60 * 24 * 90)] = 24 * 60
    area: AreaCode | None = None
    escalate_now: bool = False
    # A client-chosen id makes a retry safe: the same request is answered once.
    request: LocalId | None = None


class PledgeIn(msgspec.Struct, kw_only=True):
    what: What
    quantity: Count
    pledge: LocalId | None = None  # client-chosen: a retry is answered once


class AcceptIn(msgspec.Struct, kw_only=True):
    pledger: Slug
    pledge: str


class AlertIn(msgspec.Struct, kw_only=True):
    kind: AlertKind
    severity: Severity
    advice: AdviceText = ""
    area: AreaCode | None = None
    alert: LocalId | None = None  # client-chosen: a retry is answered once


class Created(msgspec.Struct, kw_only=True):
    id: str


class Done(msgspec.Struct, kw_only=True):
    ok: bool = True
    id: str = ""


def _aid(state: State) -> Aid:
    aid: Aid = state.aid
    return aid


AnyRequest = Request[Any, Any, Any]


async def _own_request(state: State, request: AnyRequest, request_id: str) -> None:
    """A resident acts only on a call for help they asked themselves; a coordinator on any
    of the neighborhood's. Raises Refused `not_yours` (403)."""
    who = principal_of(request)
    if who.at_least("coordinator"):
        return
    aid = _aid(state)
    if await aid.made_by(aid.me, request_id) != who.name:
        raise Refused("not_yours", f"request {request_id} was asked by someone else: ask a"
                      " coordinator", 403)  # fmt: skip


async def _with_contacts(state: State, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For a coordinator: who asked and pledged, with how to reach them (their account's
    display name and contact)."""
    accounts: Accounts = state.accounts
    known: dict[str, dict[str, str]] = {}

    async def person(name: str) -> dict[str, str] | None:
        if not name:
            return None
        if name not in known:
            found = await accounts.get(name)
            known[name] = {"name": name, "display_name": found.display_name if found else name,
                           "contact": found.contact if found else ""}  # fmt: skip
        return known[name]

    for r in rows:
        r["asked_by"] = await person(r.get("asked_by", ""))
        for p in r["pledges"]:
            p["pledged_by"] = await person(p.get("pledged_by", ""))
    return rows


@post(
    "/aid/requests",
    opt=RESIDENT,
    status_code=201,
    summary="Ask for help: kept in the neighborhood first",
)
async def post_request(state: State, request: AnyRequest, data: JSONBody[RequestIn]) -> Created:
    aid = _aid(state)
    by = principal_of(request).name

    async def create() -> Created:
        rid = await aid.request(
            category=data.category,
            urgency=data.urgency,
            needed_in_min=data.needed_in_minutes,
            quantity=data.quantity,
            description=data.description,
            area=data.area,
            escalate_now=data.escalate_now,
            request=data.request,
            by=by,
        )
        return Created(id=rid)

    return await once(aid.node.store, f"aid_request {by}", data.request, data, create, Created)


@get(
    "/aid/requests",
    opt=RESIDENT,
    summary="Open requests, ranked by urgency, needed-by and distance",
)
async def get_requests(
    state: State,
    request: AnyRequest,
    all_states: Annotated[bool, QueryParameter(name="all")] = False,
) -> list[dict[str, Any]]:
    who: Principal = principal_of(request)
    coordinator = who.at_least("coordinator")
    rows = await _aid(state).listing(
        include_closed=all_states, viewer=who.name, coordinator=coordinator
    )
    return await _with_contacts(state, rows) if coordinator else rows


@post(
    "/aid/requests/{requester:str}/{request_id:str}/pledges",
    opt=RESIDENT,
    status_code=201,
    summary="Pledge",
)
async def post_pledge(
    state: State,
    request: AnyRequest,
    requester: FromPath[str],
    request_id: FromPath[str],
    data: JSONBody[PledgeIn],
) -> Created:
    aid = _aid(state)
    by = principal_of(request).name

    async def create() -> Created:
        pid = await aid.pledge(requester, request_id, data.what, data.quantity, data.pledge, by=by)
        return Created(id=pid)

    scope = f"pledge {requester}/{request_id} {by}"  # one account cannot read another's
    return await once(aid.node.store, scope, data.pledge, data, create, Created)


@post(
    "/aid/requests/{request_id:str}/accept", opt=RESIDENT, summary="Accept a pledge (the requester)"
)
async def accept_pledge(
    state: State, request: AnyRequest, request_id: FromPath[str], data: JSONBody[AcceptIn]
) -> Done:
    await _own_request(state, request, request_id)
    env = await _aid(state).accept(request_id, data.pledger, data.pledge)
    return Done(id=env.id.hex())


@post("/aid/requests/{request_id:str}/fulfil", opt=RESIDENT, summary="Confirm the request was met")
async def fulfil(state: State, request: AnyRequest, request_id: FromPath[str]) -> Done:
    await _own_request(state, request, request_id)
    await _aid(state).fulfil(request_id)
    return Done()


@post("/aid/requests/{request_id:str}/withdraw", opt=RESIDENT, summary="Withdraw a request")
async def withdraw(state: State, request: AnyRequest, request_id: FromPath[str]) -> Done:
    await _own_request(state, request, request_id)
    await _aid(state).withdraw(request_id)
    return Done()


@post(
    "/aid/requests/{request_id:str}/escalate", opt=RESIDENT, summary="Ask the whole federation now"
)
async def escalate(state: State, request: AnyRequest, request_id: FromPath[str]) -> Done:
    await _own_request(state, request, request_id)
    env = await _aid(state).escalate(request_id, reason="a resident asked to escalate")
    return Done(id=env.id.hex())


@post(
    "/aid/requests/{requester:str}/{request_id:str}/pledges/{pledge:str}/withdraw",
    opt=RESIDENT,
    summary="Withdraw this neighborhood's pledge",
)
async def withdraw_pledge(
    state: State,
    request: AnyRequest,
    requester: FromPath[str],
    request_id: FromPath[str],
    pledge: FromPath[str],
) -> Done:
    who = principal_of(request)
    made_by = await _aid(state).made_by(requester, request_id, pledge)
    if not who.at_least("coordinator") and made_by != who.name:
        raise Refused("not_yours", f"pledge {pledge} was made by someone else", 403)
    env = await _aid(state).withdraw_pledge(requester, request_id, pledge)
    return Done(id=env.id.hex())


@post(
    "/alerts", opt=COORDINATOR, status_code=201, summary="Raise a crisis alert for the federation"
)
async def post_alert(state: State, data: JSONBody[AlertIn]) -> Created:
    aid = _aid(state)

    async def create() -> Created:
        alert = await aid.raise_alert(data.kind, data.severity, data.area, data.advice, data.alert)
        return Created(id=alert)

    return await once(aid.node.store, "alert", data.alert, data, create, Created)


@post(
    "/alerts/{alert:str}/resolve",
    opt=COORDINATOR,
    summary="Resolve one of this neighborhood's alerts",
)
async def resolve_alert(state: State, alert: FromPath[str]) -> Done:
    await _aid(state).resolve_alert(alert)
    return Done()


@get("/alerts", opt=RESIDENT, summary="Alerts, open ones first, the most severe first")
async def get_alerts(
    state: State, all_states: Annotated[bool, QueryParameter(name="all")] = False
) -> list[dict[str, Any]]:
    return await _aid(state).alerts(include_resolved=all_states)


aid_router = Router(
    path="/",
    route_handlers=[
        post_request,
        get_requests,
        post_pledge,
        accept_pledge,
        fulfil,
        withdraw,
        escalate,
        withdraw_pledge,
        post_alert,
        resolve_alert,
        get_alerts,
    ],
)
