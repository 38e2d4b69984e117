"""Resident API for membership: who is a member, applying, consenting, objecting, retiring
(docs/PROTOCOL.md §16)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from coopnet.node.engine.auth import COORDINATOR, RESIDENT
from coopnet.node.engine.context import NodeContext
from coopnet.node.engine.store_io import fetch_all
from coopnet.node.membership.governance import Governance
from coopnet.protocol.membership import About, Reason


class ApplyIn(msgspec.Struct, kw_only=True):
    about: About = ""
    reason: Reason


class ObjectIn(msgspec.Struct, kw_only=True):
    reason: Reason


class RetireIn(msgspec.Struct, kw_only=True):
    reason: About = ""


class Signed(msgspec.Struct, kw_only=True):
    id: str
    seq: int


def _node(state: State) -> NodeContext:
    node: NodeContext = state.node
    return node


def _governance(state: State) -> Governance:
    governance: Governance = state.governance
    return governance


@get(
    "/membership",
    opt=RESIDENT,
    summary="Every neighborhood's membership, as the consent rule decides it",
)
async def get_membership(state: State) -> dict[str, Any]:
    node = _node(state)
    standings = await _governance(state).standings()
    apps = {
        r[0]: {"display_name": r[1], "area": r[2], "about": r[3], "reason": r[4], "at": r[5]}
        for r in await fetch_all(
            node.store.db,
            "SELECT applicant, display_name, area, about, reason, at FROM member_applications",
        )
    }
    objections = {
        (r[0], r[1]): r[2]
        for r in await fetch_all(
            node.store.db,
            "SELECT voter, applicant, reason FROM member_positions WHERE stance = 'object'",
        )
    }
    charter = _governance(state).charter
    members = []
    for slug, s in sorted(standings.items()):
        members.append(
            {
                "slug": slug,
                "status": s.status,
                "consents": list(s.consents),
                "objections": [
                    {"member": m, "reason": objections.get((m, slug), "")} for m in s.objections
                ],
                "needed": s.needed,
                "application": apps.get(slug),
            }
        )
    return {
        "federation": charter.name if charter else "",
        "charter": charter is not None,
        "quorum_percent": charter.policies.quorum_percent if charter else 50,
        "consent_window_s": charter.policies.consent_window_s if charter else 0,
        "me": node.slug,
        "members": members,
    }


@post(
    "/membership/apply",
    opt=COORDINATOR,
    status_code=201,
    summary="Apply to join (a new neighborhood)",
)
async def apply(state: State, data: JSONBody[ApplyIn]) -> Signed:
    env = await _governance(state).apply(data.about, data.reason)
    return Signed(id=env.id.hex(), seq=env.seq)


@post("/membership/{applicant:str}/consent", opt=COORDINATOR, summary="Consent to an application")
async def consent(state: State, applicant: FromPath[str]) -> Signed:
    env = await _governance(state).answer(applicant, "consent")
    return Signed(id=env.id.hex(), seq=env.seq)


@post(
    "/membership/{applicant:str}/object",
    opt=COORDINATOR,
    summary="Object to an application, with a reason",
)
async def object_to(state: State, applicant: FromPath[str], data: JSONBody[ObjectIn]) -> Signed:
    env = await _governance(state).answer(applicant, "object", data.reason)
    return Signed(id=env.id.hex(), seq=env.seq)


@post(
    "/membership/{applicant:str}/withdraw",
    opt=COORDINATOR,
    summary="Withdraw this node's objection",
)
async def withdraw(state: State, applicant: FromPath[str]) -> Signed:
    env = await _governance(state).answer(applicant, "withdraw")
    return Signed(id=env.id.hex(), seq=env.seq)


@post(
    "/membership/retire",
    opt=COORDINATOR,
    summary="Leave the federation: the last event this node signs",
)
async def retire(state: State, data: JSONBody[RetireIn]) -> Signed:
    env = await _governance(state).retire(data.reason)
    return Signed(id=env.id.hex(), seq=env.seq)


membership_router = Router(
    path="/",
    route_handlers=[get_membership, apply, consent, object_to, withdraw, retire],
)
