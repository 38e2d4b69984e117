"""Resident API for the market: offers, needs, matches, trades and the balance."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from coopnet.node.engine.auth import COORDINATOR, RESIDENT
from coopnet.node.engine.context import NodeContext
from coopnet.node.engine.idempotency import once
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store import now_ms
from coopnet.node.engine.store_io import fetch_all, fetch_one
from coopnet.node.market import projection as market
from coopnet.node.market.trading import Trading, new_id
from coopnet.protocol.body import AreaCode, ShortText
from coopnet.protocol.errors import InvalidEvent
from coopnet.protocol.ledger import breaches
from coopnet.protocol.offers import (
    Category,
    Cents,
    Delivery,
    ItemName,
    LocalId,
    Match,
    Millis,
    NeedPosted,
    NeedWithdrawn,
    Offer,
    OfferPosted,
    OfferRevised,
    OfferWithdrawn,
    Quantity,
    Terms,
    Unit,
    match,
    offer_step,
)
from coopnet.protocol.trades import Reason, Slug

DAY_MS = 24 * 3600 * 1000


class OfferIn(msgspec.Struct, kw_only=True):
    item: ItemName
    category: Category
    quantity: Quantity
    unit: Unit
    unit_price: Cents
    min_order: Quantity = 1
    available_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 7
    delivery: Delivery = "pickup"
    terms: Terms = ""
    area: AreaCode | None = None
    offer: LocalId | None = None


class OfferRevisionIn(msgspec.Struct, kw_only=True):
    quantity: Quantity | None = None
    unit_price: Cents | None = None
    min_order: Quantity | None = None
    available_until: Millis | None = None


class NeedIn(msgspec.Struct, kw_only=True):
    item: ItemName
    category: Category
    quantity: Quantity
    unit: Unit
    max_unit_price: Cents | None = None
    needed_in_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 7
    area: AreaCode | None = None
    need: LocalId | None = None


class ProposalIn(msgspec.Struct, kw_only=True):
    seller: Slug
    offer: LocalId
    quantity: Quantity
    unit_price: Cents | None = None
    expires_in_s: Annotated[int, msgspec.Meta(ge=10, le=30 * 24 * 3600)] = 3600
    trade: LocalId | None = None


class ReasonIn(msgspec.Struct, kw_only=True):
    reason: ShortText = ""


class DisputeIn(msgspec.Struct, kw_only=True):
    reason: Reason


class Ref(msgspec.Struct, kw_only=True):
    """What an action signed: the event's author, seq and id."""

    author: str
    seq: int
    id: str
    kind: str


class OfferOut(msgspec.Struct, kw_only=True):
    author: str
    offer: str
    item: str
    category: str
    quantity: int
    remaining: int
    unit: str
    unit_price: int
    min_order: int
    available_until: int
    delivery: str
    area: str
    state: str


class NeedOut(msgspec.Struct, kw_only=True):
    author: str
    need: str
    item: str
    category: str
    quantity: int
    unit: str
    max_unit_price: int | None
    needed_by: int
    area: str
    state: str


class TradeOut(msgspec.Struct, kw_only=True):
    buyer: str
    trade: str
    seller: str
    offer: str
    quantity: int
    unit_price: int
    total: int
    expires_at: int
    proposed_at: int
    state: str
    buyer_state: str
    seller_state: str
    item: str = ""  # the offer's, for people ("" if this node never saw the offer)
    unit: str = ""


class BalanceOut(msgspec.Struct, kw_only=True):
    neighborhood: str
    balance: int
    committed: int
    credit_limit: int
    available: int
    ledger: dict[str, int]
    ledger_sum: int
    breaches: list[str]


def _node(state: State) -> NodeContext:
    node: NodeContext = state.node
    return node


def _trading(state: State) -> Trading:
    trading: Trading = state.trading
    return trading


def _ref(env: Any) -> Ref:
    return Ref(author=env.author, seq=env.seq, id=env.id.hex(), kind=env.kind)


def _offer_out(o: Offer) -> OfferOut:
    return OfferOut(
        author=o.author,
        offer=o.offer,
        item=o.item,
        category=o.category,
        quantity=o.quantity,
        remaining=o.remaining,
        unit=o.unit,
        unit_price=o.unit_price,
        min_order=o.min_order,
        available_until=o.available_until,
        delivery=o.delivery,
        area=o.area,
        state=o.state,
    )


async def all_offers(node: NodeContext, *, open_only: bool) -> list[Offer]:
    cols = ", ".join(Offer.__struct_fields__)
    sql = f"SELECT {cols} FROM offers"
    if open_only:
        sql += " WHERE state = 'open' AND quantity > reserved AND available_until >= ?"
    rows = await fetch_all(node.store.db, sql, (now_ms(),) if open_only else ())
    return [Offer(**dict(zip(Offer.__struct_fields__, r, strict=True))) for r in rows]


@post(
    "/offers",
    opt=COORDINATOR,
    status_code=201,
    summary="Post an offer (a co-op's production to share)",
)
async def post_offer(state: State, data: JSONBody[OfferIn]) -> Ref:
    node = _node(state)
    body = OfferPosted(
        offer=data.offer or new_id("o"),
        item=data.item,
        category=data.category,
        quantity=data.quantity,
        unit=data.unit,
        unit_price=data.unit_price,
        min_order=data.min_order,
        available_until=now_ms() + data.available_days * DAY_MS,
        delivery=data.delivery,
        terms=data.terms,
        area=data.area or node.config.area,
    )

    async def create() -> Ref:
        if await market.load_offer(node.store.db, node.slug, body.offer) is not None:
            raise Refused("duplicate", f"offer {body.offer} exists: choose another id")
        return _ref(await node.post(body))

    return await once(node.store, "offer", data.offer, data, create, Ref)


@get("/offers", opt=RESIDENT, summary="Offers across the federation with what remains of each")
async def get_offers(
    state: State,
    all_states: Annotated[bool, QueryParameter(name="all")] = False,
    author: Annotated[str | None, QueryParameter()] = None,
) -> list[OfferOut]:
    offers = await all_offers(_node(state), open_only=not all_states)
    return [_offer_out(o) for o in offers if author is None or o.author == author]


@post("/offers/{offer:str}/revise", opt=COORDINATOR, summary="Revise one of this co-op's offers")
async def revise_offer(state: State, offer: FromPath[str], data: JSONBody[OfferRevisionIn]) -> Ref:
    node = _node(state)
    body = OfferRevised(offer=offer, **msgspec.structs.asdict(data))
    return _ref(await _own_offer_event(node, offer, body))


@post(
    "/offers/{offer:str}/withdraw", opt=COORDINATOR, summary="Withdraw one of this co-op's offers"
)
async def withdraw_offer(state: State, offer: FromPath[str]) -> Ref:
    node = _node(state)
    return _ref(await _own_offer_event(node, offer, OfferWithdrawn(offer=offer)))


async def _own_offer_event(node: NodeContext, offer: str, body: Any) -> Any:
    found = await market.load_offer(node.store.db, node.slug, offer)
    if found is None or found.state != "open":
        raise Refused("not_found", f"no open offer {offer} of {node.slug}", 404)
    try:  # the rule every receiver applies (PROTOCOL.md §10), said before signing
        offer_step(found, node.slug, body)
    except InvalidEvent as exc:
        raise Refused(exc.code, exc.message) from None
    return await node.post(body)


@post(
    "/needs",
    opt=COORDINATOR,
    status_code=201,
    summary="Post a need (what to source inside the federation)",
)
async def post_need(state: State, data: JSONBody[NeedIn]) -> Ref:
    node = _node(state)
    body = NeedPosted(
        need=data.need or new_id("n"),
        item=data.item,
        category=data.category,
        quantity=data.quantity,
        unit=data.unit,
        max_unit_price=data.max_unit_price,
        needed_by=now_ms() + data.needed_in_days * DAY_MS,
        area=data.area or node.config.area,
    )

    async def create() -> Ref:
        taken = "SELECT 1 FROM needs WHERE author = ? AND need = ?"
        if await fetch_one(node.store.db, taken, (node.slug, body.need)) is not None:
            raise Refused("duplicate", f"need {body.need} exists: choose another id")
        return _ref(await node.post(body))

    return await once(node.store, "need", data.need, data, create, Ref)


@get("/needs", opt=RESIDENT, summary="Open needs across the federation")
async def get_needs(
    state: State, all_states: Annotated[bool, QueryParameter(name="all")] = False
) -> list[NeedOut]:
    sql = "SELECT * FROM needs" + ("" if all_states else " WHERE state = 'open'")
    rows = await fetch_all(_node(state).store.db, sql)
    return [NeedOut(**dict(zip(NeedOut.__struct_fields__, r, strict=True))) for r in rows]


@post("/needs/{need:str}/withdraw", opt=COORDINATOR, summary="Withdraw one of this co-op's needs")
async def withdraw_need(state: State, need: FromPath[str]) -> Ref:
    node = _node(state)
    sql = "SELECT 1 FROM needs WHERE author = ? AND need = ? AND state = 'open'"
    if await fetch_one(node.store.db, sql, (node.slug, need)) is None:
        raise Refused("not_found", f"no open need {need} of {node.slug}", 404)
    return _ref(await node.post(NeedWithdrawn(need=need)))


@get("/match", opt=RESIDENT, summary="For this co-op's open needs, the fitting offers, best first")
async def get_matches(
    state: State, need: Annotated[str | None, QueryParameter()] = None
) -> dict[str, list[Match]]:
    node = _node(state)
    rows = await fetch_all(
        node.store.db,
        "SELECT need, item, category, quantity, unit, max_unit_price, needed_by, area"
        " FROM needs WHERE author = ? AND state = 'open'",
        (node.slug,),
    )
    offers = [o for o in await all_offers(node, open_only=True) if o.author != node.slug]
    out: dict[str, list[Match]] = {}
    for r in rows:
        if need is not None and r[0] != need:
            continue
        wanted = NeedPosted(
            need=r[0], item=r[1], category=r[2], quantity=r[3], unit=r[4],
            max_unit_price=r[5], needed_by=r[6], area=r[7],
        )  # fmt: skip
        out[r[0]] = match(wanted, offers, now=now_ms())
    return out


@post(
    "/trades",
    opt=COORDINATOR,
    status_code=201,
    summary="Propose a trade against an offer (as the buyer)",
)
async def post_trade(state: State, data: JSONBody[ProposalIn]) -> Ref:
    trading = _trading(state)

    async def create() -> Ref:
        env = await trading.propose(
            data.seller,
            data.offer,
            data.quantity,
            unit_price=data.unit_price,
            expires_in_s=data.expires_in_s,
            trade=data.trade,
        )
        return _ref(env)

    return await once(_node(state).store, "trade", data.trade, data, create, Ref)


@get("/trades", opt=RESIDENT, summary="Trades this co-op is part of (or all with all=true)")
async def get_trades(
    state: State,
    all_states: Annotated[bool, QueryParameter(name="all")] = False,
    trade_state: Annotated[str | None, QueryParameter(name="state")] = None,
) -> list[TradeOut]:
    node = _node(state)
    columns = ", ".join(f"t.{c}" for c in market.TRADE_COLUMNS)
    sql = (
        f"SELECT {columns}, coalesce(o.item, ''), coalesce(o.unit, '') FROM trades t"
        " LEFT JOIN offers o ON o.author = t.seller AND o.offer = t.offer"
    )
    params: list[str] = []
    if not all_states:
        sql += " WHERE (t.buyer = ? OR t.seller = ?)"
        params = [node.slug, node.slug]
    rows = await fetch_all(node.store.db, sql + " ORDER BY t.proposed_at", params)
    names = (*market.TRADE_COLUMNS, "item", "unit")
    now = now_ms()
    out = []
    for r in rows:
        t = dict(zip(names, r, strict=True))
        if t["state"] == "proposed" and now > t["expires_at"]:
            t["state"] = "expired"
        if trade_state is None or t["state"] == trade_state:
            out.append(TradeOut(**t))
    return out


Action = Literal["accept", "decline", "ship", "receive", "cancel", "dispute"]


@post(
    "/trades/{buyer:str}/{trade:str}/{action:str}",
    opt=COORDINATOR,
    summary="Answer or move a trade",
)
async def act_on_trade(
    state: State,
    buyer: FromPath[str],
    trade: FromPath[str],
    action: FromPath[Action],
    data: JSONBody[ReasonIn | None] = None,
) -> Ref:
    tr = _trading(state)
    reason = data.reason if data is not None else ""
    if action == "accept":
        env = await tr.accept(buyer, trade)
    elif action == "decline":
        env = await tr.decline(buyer, trade, reason)
    elif action == "ship":
        env = await tr.ship(buyer, trade)
    elif action == "receive":
        env = await tr.receive(buyer, trade)
    elif action == "cancel":
        env = await tr.cancel(buyer, trade, reason)
    else:
        if not reason:
            raise Refused("bad_request", "a dispute needs a reason", 400)
        env = await tr.dispute(buyer, trade, reason)
    return _ref(env)


@get(
    "/balance",
    opt=RESIDENT,
    summary="This co-op's mutual-credit balance, and the federation ledger",
)
async def get_balance(state: State) -> BalanceOut:
    node = _node(state)
    ledger = await market.balances(node.store.db)
    committed = await market.commitments(node.store.db, now_ms())
    mine = ledger.get(node.slug, 0)
    return BalanceOut(
        neighborhood=node.slug,
        balance=mine,
        committed=committed.get(node.slug, 0),
        credit_limit=node.credit_limit,
        available=mine - committed.get(node.slug, 0) + node.credit_limit,
        ledger=ledger,
        ledger_sum=sum(ledger.values()),
        breaches=breaches(ledger, committed, node.credit_limit),
    )


market_router = Router(
    path="/",
    route_handlers=[
        post_offer,
        get_offers,
        revise_offer,
        withdraw_offer,
        post_need,
        get_needs,
        withdraw_need,
        get_matches,
        post_trade,
        get_trades,
        act_on_trade,
        get_balance,
    ],
)
