"""Resident API for the time bank: residents' hours, and hours between neighborhoods.

Amounts are integers of quarter hours (`quarters`, 1 = 15 minutes, an hour is 4): a
non-integer or one below 1 is refused (400) before anything else; the CLI and the app
read hours in quarter steps ("1.5") and refuse others with `not_quarter_hours`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from coopnet.node.engine.accounts import OPERATOR
from coopnet.node.engine.auth import COORDINATOR, RESIDENT, principal_of
from coopnet.node.engine.idempotency import once
from coopnet.node.engine.refusals import Refused
from coopnet.node.timebank.bank import TimeBank
from coopnet.protocol.hours import HoursTransferred, Quarters
from coopnet.protocol.offers import LocalId
from coopnet.protocol.pools import OptionalLocalId
from coopnet.protocol.trades import Slug

AccountName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
What = Annotated[str, msgspec.Meta(min_length=1, max_length=280)]
AnyRequest = Request[Any, Any, Any]


class EntryIn(msgspec.Struct, kw_only=True):
    receiver: AccountName
    quarters: Quarters
    what: What
    giver: AccountName | None = None  # a coordinator records for another resident
    entry: LocalId | None = None  # client-chosen: a retry is answered once


class CreditIn(msgspec.Struct, kw_only=True):
    resident: AccountName
    quarters: Quarters
    what: What
    entry: LocalId | None = None


class TransferIn(msgspec.Struct, kw_only=True):
    to: Slug
    quarters: Quarters
    request: OptionalLocalId = ""
    transfer: LocalId | None = None


class EntryOut(msgspec.Struct, kw_only=True):
    id: str
    giver: str
    receiver: str
    quarters: int
    what: str
    state: str  # pending | confirmed | declined
    recorded_by: str
    created_at: int  # ms since the epoch
    decided_at: int | None


class MeOut(msgspec.Struct, kw_only=True):
    name: str
    balance: int  # quarters: given minus received, confirmed entries
    debt_cap: int  # quarters: how far below zero the balance may go
    available: int  # quarters this resident may still receive: balance + debt_cap
    entries: list[EntryOut]  # given or received, newest first


class ResidentOut(msgspec.Struct, kw_only=True):
    name: str
    display_name: str
    disabled: bool
    balance: int
    given: int
    received: int


class ResidentsOut(msgspec.Struct, kw_only=True):
    residents: list[ResidentOut]  # every account, and @coop (the co-op)
    ledger_sum: int  # always 0
    debt_cap: int


class Ref(msgspec.Struct, kw_only=True):
    """What an action signed: the event's author, seq and id."""

    author: str
    seq: int
    id: str
    kind: str


class TransferOut(msgspec.Struct, kw_only=True):
    id: str
    transfer: str
    to: str
    quarters: int
    request: str
    event: Ref


class NeighborhoodHoursOut(msgspec.Struct, kw_only=True):
    neighborhood: str
    balance: int
    given: int  # quarters its residents gave other neighborhoods (signed over to it)
    received: int  # quarters it received from other neighborhoods (it signed over)


class HoursLedgerOut(msgspec.Struct, kw_only=True):
    neighborhood: str
    balance: int
    hours_limit: int
    available: int
    neighborhoods: list[NeighborhoodHoursOut]
    ledger_sum: int
    breaches: list[str]
    transfers: list[dict[str, Any]]  # this neighborhood's, newest first


def _bank(state: State) -> TimeBank:
    bank: TimeBank = state.timebank
    return bank


def _entry(e: dict[str, Any]) -> EntryOut:
    return EntryOut(**e)


@get("/hours/me", opt=RESIDENT, summary="My hours: balance, debt cap and entries (quarter hours)")
async def get_me(state: State, request: AnyRequest) -> MeOut:
    bank, name = _bank(state), principal_of(request).name
    balance = await bank.balance(name)
    return MeOut(
        name=name,
        balance=balance,
        debt_cap=bank.debt_cap,
        available=balance + bank.debt_cap,
        entries=[_entry(e) for e in await bank.entries_of(name)],
    )


@post(
    "/hours/entries",
    opt=RESIDENT,
    status_code=201,
    summary="Record hours I gave another resident (pending until they confirm)",
)
async def post_entry(state: State, request: AnyRequest, data: JSONBody[EntryIn]) -> EntryOut:
    bank, who = _bank(state), principal_of(request)
    giver = data.giver or who.name
    if giver != who.name and not who.at_least("coordinator"):
        raise Refused("not_yours", "a resident records the hours they gave themselves", 403)
    if giver == OPERATOR:
        raise Refused("no_such_account", "the node's CLI has no time account: name the giver", 404)

    async def create() -> EntryOut:
        return _entry(
            await bank.record(
                giver=giver, receiver=data.receiver, quarters=data.quarters, what=data.what,
                by=who.name, entry=data.entry,
            )
        )  # fmt: skip

    return await once(bank.node.store, f"time_entry {who.name}", data.entry, data, create, EntryOut)


@post("/hours/entries/{entry:str}/confirm", opt=RESIDENT, summary="Confirm hours I received")
async def confirm_entry(state: State, request: AnyRequest, entry: FromPath[str]) -> EntryOut:
    bank = _bank(state)
    return _entry(await bank.decide(entry, principal_of(request).name, confirm=True))


@post("/hours/entries/{entry:str}/decline", opt=RESIDENT, summary="Decline hours recorded to me")
async def decline_entry(state: State, request: AnyRequest, entry: FromPath[str]) -> EntryOut:
    bank = _bank(state)
    return _entry(await bank.decide(entry, principal_of(request).name, confirm=False))


@get("/hours/residents", opt=COORDINATOR, summary="Every resident's hours, and the co-op's")
async def get_residents(state: State) -> ResidentsOut:
    bank = _bank(state)
    rows = [ResidentOut(**r) for r in await bank.residents()]
    return ResidentsOut(
        residents=rows, ledger_sum=sum(r.balance for r in rows), debt_cap=bank.debt_cap
    )


@post(
    "/hours/credit",
    opt=COORDINATOR,
    status_code=201,
    summary="Credit a resident with hours from the co-op (@coop)",
)
async def post_credit(state: State, request: AnyRequest, data: JSONBody[CreditIn]) -> EntryOut:
    bank, by = _bank(state), principal_of(request).name

    async def create() -> EntryOut:
        return _entry(
            await bank.credit(
                resident=data.resident, quarters=data.quarters, what=data.what, by=by,
                entry=data.entry,
            )
        )  # fmt: skip

    return await once(bank.node.store, "time_credit", data.entry, data, create, EntryOut)


@get(
    "/hours/neighborhoods",
    opt=RESIDENT,
    summary="The federation's hour ledger: each neighborhood's balance, given and received",
)
async def get_neighborhoods(state: State) -> HoursLedgerOut:
    found = await _bank(state).neighborhoods()
    found["neighborhoods"] = [NeighborhoodHoursOut(**r) for r in found["neighborhoods"]]
    return HoursLedgerOut(**found)


@post(
    "/hours/transfers",
    opt=COORDINATOR,
    status_code=201,
    summary="Sign hours over to a neighborhood whose residents helped this one",
)
async def post_transfer(state: State, data: JSONBody[TransferIn]) -> TransferOut:
    bank = _bank(state)

    async def create() -> TransferOut:
        env = await bank.transfer(
            data.to, data.quarters, request=data.request, transfer=data.transfer
        )
        body = env.body
        assert isinstance(body, HoursTransferred)
        return TransferOut(
            id=body.transfer,
            transfer=body.transfer,
            to=data.to,
            quarters=data.quarters,
            request=data.request,
            event=Ref(author=env.author, seq=env.seq, id=env.id.hex(), kind=env.kind),
        )

    return await once(bank.node.store, "hours_transfer", data.transfer, data, create, TransferOut)


timebank_router = Router(
    path="/",
    route_handlers=[
        get_me,
        post_entry,
        confirm_entry,
        decline_entry,
        get_residents,
        post_credit,
        get_neighborhoods,
        post_transfer,
    ],
)
