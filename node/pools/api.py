"""Resident API for pooled purchases (PROTOCOL.md §19): list, show, open, commit, and the
organizer's and participants' steps. Amounts are credit cents, quantities the pool's
units, times ms since the epoch. A refusal is `{code, message}` with a stable code (as the
market's: node/engine/api.py maps `Refused`)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from coopnet.node.engine.auth import COORDINATOR, RESIDENT
from coopnet.node.engine.context import NodeContext
from coopnet.node.engine.idempotency import once
from coopnet.node.engine.refusals import Refused
from coopnet.node.pools import projection as pools
from coopnet.node.pools.pooling import Pooling
from coopnet.protocol import Envelope
from coopnet.protocol.body import ShortText
from coopnet.protocol.offers import Cents, ItemName, LocalId, Millis, Unit
from coopnet.protocol.pools import (
    STATES,
    Capacity,
    CaseCount,
    CaseSize,
    OptionalLocalId,
    OptionalSlug,
    SupplierName,
    Units,
)


class PoolIn(msgspec.Struct, kw_only=True):
    """Open a pool: `closes_at` (ms) or `closes_in_s` (seconds from now), one of the two;
    a member `supplier` (and optionally its `supplier_offer`) or a `supplier_name`."""

    item: ItemName
    unit: Unit
    case_size: CaseSize
    unit_price: Cents
    min_cases: CaseCount = 1
    max_cases: Capacity = 0
    closes_at: Millis | None = None
    closes_in_s: Annotated[int, msgspec.Meta(ge=1, le=365 * 24 * 3600)] | None = None
    supplier: OptionalSlug = ""
    supplier_name: SupplierName = ""
    supplier_offer: OptionalLocalId = ""
    single_unit_price: Cents | None = None
    pool: LocalId | None = None


class CommitIn(msgspec.Struct, kw_only=True):
    """A commitment: `quantity` units and up to `tolerance` more to fill a case (0, 0
    withdraws)."""

    quantity: Units
    tolerance: Units = 0


class ReasonIn(msgspec.Struct, kw_only=True):
    reason: ShortText = ""


class Ref(msgspec.Struct, kw_only=True):
    """What an action signed: the event's author, seq, id (hex) and kind."""

    author: str
    seq: int
    id: str
    kind: str


class ShareOut(msgspec.Struct, kw_only=True):
    """A participant's latest commitment (before the close) or counted one (after it),
    its share in units (0 until allocated) and whether its receipt counted."""

    participant: str
    quantity: int
    tolerance: int
    share: int
    received: bool


class SettlementOut(msgspec.Struct, kw_only=True):
    payer: str
    payee: str
    amount: int  # credit cents


class PoolOut(msgspec.Struct, kw_only=True):
    organizer: str
    pool: str
    item: str
    unit: str
    case_size: int
    unit_price: int
    min_cases: int
    max_cases: int
    closes_at: int
    supplier: str
    supplier_offer: str
    supplier_name: str
    single_unit_price: int
    opened_at: int
    organizer_state: str
    state: str
    cases: int
    committed: int  # units the shares' quantities sum to
    # GET /pools/{organizer}/{pool} only (0 in the list, and when none): when the organizer
    # turned the pool to box fill (ms), and, on the organizer's own node, when its
    # organizer activity closes it (box_fill_at + node.toml `[pools] box_fill_s`).
    box_fill_at: int = 0
    box_fill_closes_at: int = 0
    shares: list[ShareOut] = msgspec.field(default_factory=list)
    settlements: list[SettlementOut] = msgspec.field(default_factory=list)
    holds: dict[str, int] = msgspec.field(default_factory=dict)  # participant -> cents


def _node(state: State) -> NodeContext:
    node: NodeContext = state.node
    return node


def _pooling(state: State) -> Pooling:
    pooling: Pooling = state.pooling
    return pooling


def _ref(env: Envelope) -> Ref:
    return Ref(author=env.author, seq=env.seq, id=env.id.hex(), kind=env.kind)


def _pool_out(p: dict[str, Any]) -> PoolOut:
    shares = [ShareOut(**{**s, "received": bool(s["received"])}) for s in p["shares"]]
    fields = {k: v for k, v in p.items() if k != "shares"}
    return PoolOut(**fields, shares=shares, committed=sum(s.quantity for s in shares))


@get("/pools", opt=RESIDENT, summary="Pooled purchases across the federation")
async def get_pools(
    state: State, pool_state: Annotated[str | None, QueryParameter(name="state")] = None
) -> list[PoolOut]:
    if pool_state is not None and pool_state not in STATES:
        raise Refused("bad_request", f"state is one of {', '.join(STATES)}", 400)
    db = _node(state).store.db
    out = []
    for row in await pools.all_pools(db, pool_state):
        p = await pools.load_pool(db, str(row["organizer"]), str(row["pool"]))
        if p is not None:
            out.append(_pool_out(p))
    return out


@get(
    "/pools/{organizer:str}/{pool:str}",
    opt=RESIDENT,
    summary="One pool with its shares, settlements and credit holds",
)
async def get_pool(state: State, organizer: FromPath[str], pool: FromPath[str]) -> PoolOut:
    db = _node(state).store.db
    p = await pools.load_pool(db, organizer, pool)
    if p is None:
        raise Refused("not_found", f"no pool {organizer}/{pool} here", 404)
    out = _pool_out(p)
    out.settlements = [
        SettlementOut(payer=r[0], payee=r[1], amount=r[2])
        for r in await pools.settlements_of(db, organizer, pool)
    ]
    out.holds = await pools.holds_of(db, organizer, pool)
    node = _node(state)
    out.box_fill_at = (await pools.box_fill(db, organizer, pool))[0]
    if out.box_fill_at and organizer == node.slug:
        out.box_fill_closes_at = out.box_fill_at + node.config.pools.box_fill_s * 1000
    return out


@post("/pools", opt=COORDINATOR, status_code=201, summary="Open a pool (as its organizer)")
async def post_pool(state: State, data: JSONBody[PoolIn]) -> Ref:
    node, pooling = _node(state), _pooling(state)
    if (data.closes_at is None) == (data.closes_in_s is None):
        raise Refused("bad_request", "give closes_at or closes_in_s, one of the two", 400)

    async def create() -> Ref:
        closes_at = data.closes_at
        if closes_at is None:
            assert data.closes_in_s is not None
            closes_at = node.clock() + data.closes_in_s * 1000
        env = await pooling.open(
            item=data.item, unit=data.unit, case_size=data.case_size,
            unit_price=data.unit_price, closes_at=closes_at, min_cases=data.min_cases,
            max_cases=data.max_cases, supplier=data.supplier, supplier_name=data.supplier_name,
            supplier_offer=data.supplier_offer, single_unit_price=data.single_unit_price,
            pool=data.pool,
        )  # fmt: skip
        return _ref(env)

    return await once(node.store, "pool", data.pool, data, create, Ref)


@post(
    "/pools/{organizer:str}/{pool:str}/commit",
    opt=COORDINATOR,
    summary="Commit to a pool, change the commitment, or withdraw it with 0 and 0",
)
async def commit_to_pool(
    state: State, organizer: FromPath[str], pool: FromPath[str], data: JSONBody[CommitIn]
) -> Ref:
    env = await _pooling(state).commit(organizer, pool, data.quantity, data.tolerance)
    return _ref(env)


def _own(organizer: str, me: str) -> None:
    if organizer != me:
        raise Refused("not_authorized", f"only the organizer ({organizer}) may do this", 403)


@post(
    "/pools/{organizer:str}/{pool:str}/box-fill",
    opt=COORDINATOR,
    summary="Turn an open pool to box fill (organizer)",
)
async def box_fill_pool(state: State, organizer: FromPath[str], pool: FromPath[str]) -> Ref:
    pooling = _pooling(state)
    _own(organizer, pooling.me)
    return _ref(await pooling.box_fill(pool))


@post(
    "/pools/{organizer:str}/{pool:str}/close",
    opt=COORDINATOR,
    summary="Close a pool, counting each participant's latest commitment (organizer)",
)
async def close_pool(state: State, organizer: FromPath[str], pool: FromPath[str]) -> Ref:
    pooling = _pooling(state)
    _own(organizer, pooling.me)
    return _ref(await pooling.close(pool))


@post(
    "/pools/{organizer:str}/{pool:str}/cancel",
    opt=COORDINATOR,
    summary="Cancel a pool before delivery (organizer)",
)
async def cancel_pool(
    state: State,
    organizer: FromPath[str],
    pool: FromPath[str],
    data: JSONBody[ReasonIn | None] = None,
) -> Ref:
    pooling = _pooling(state)
    _own(organizer, pooling.me)
    return _ref(await pooling.cancel(pool, data.reason if data is not None else ""))


@post(
    "/pools/{organizer:str}/{pool:str}/deliver",
    opt=COORDINATOR,
    summary="Mark a closed pool delivered: a member supplier is paid (organizer)",
)
async def deliver_pool(state: State, organizer: FromPath[str], pool: FromPath[str]) -> Ref:
    pooling = _pooling(state)
    _own(organizer, pooling.me)
    return _ref(await pooling.deliver(pool))


@post(
    "/pools/{organizer:str}/{pool:str}/receive",
    opt=COORDINATOR,
    summary="Confirm this co-op received its share: it pays the organizer (participant)",
)
async def receive_pool(state: State, organizer: FromPath[str], pool: FromPath[str]) -> Ref:
    return _ref(await _pooling(state).receive(organizer, pool))


pools_router = Router(
    path="/",
    route_handlers=[
        get_pools,
        get_pool,
        post_pool,
        commit_to_pool,
        box_fill_pool,
        close_pool,
        cancel_pool,
        deliver_pool,
        receive_pool,
    ],
)

__all__ = ["pools_router"]
