"""The audit reads refusal codes, never their reasons (PROTOCOL.md §17): a body of the wrong
shape is `refused_bad_body` whatever its fields say (msgspec's reason quotes them), a
`trade.*` one included (the market never folds it, so the trade fold never judges it), and
an oversell is found by folding the seller's own log again (PROTOCOL.md §10).

The rogue signer, an honest node and the observer are tests/federation/test_audit.py's,
over a real nats-server; a wrong shape is sealed as a coopnet whose registry reads that
kind otherwise would seal it (the registry patched while signing only).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coopnet.federation.audit import beyond_quantity
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.store import now_ms
from coopnet.protocol import Envelope
from coopnet.protocol.body import Body
from coopnet.protocol.kinds import KINDS
from coopnet.protocol.offers import OfferPosted, OfferWithdrawn
from coopnet.protocol.trades import TradeAccepted, TradeCancelled
from tests.conftest import running, wait_until
from tests.federation.test_audit import (
    HOUR_MS,
    Rogue,
    eggs,
    findings,
    holds,
    honest,
    observing,
    publish,
    refusals_of,
    refused_everywhere,
)

pytestmark = pytest.mark.timeout(60)


class OfferInAnyUnit(OfferPosted, frozen=True, kw_only=True):
    """`offer.posted` as a signer that takes any string for a unit."""

    unit: str  # type: ignore[assignment]


class AcceptedOfAnyQuantity(TradeAccepted, frozen=True, kw_only=True):
    """`trade.accepted` as a signer that takes any integer for a quantity."""

    quantity: int


def signed_as(rogue: Rogue, kind: type[Body], body: Body) -> Envelope:
    """The rogue's next event, signed while the registry reads `body.kind` as `kind`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(KINDS, body.kind, kind)
        return rogue.next(body)


async def test_wrong_shaped_offers_and_acceptances_are_bad_body_findings(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """An offer whose unit is the text "no oversell" is no oversell attempt, and an
    acceptance of quantity 0 (a `trade.*` body of the wrong shape) is reported, with its
    id as evidence, as every other kind's."""
    url = nats_server.url
    zed = Rogue("zed")
    founded = zed.found()
    offer = signed_as(zed, OfferInAnyUnit, OfferInAnyUnit(
        offer="eggs-1", item="eggs", category="dairy-eggs", quantity=4, unit="no oversell",
        unit_price=35, available_until=now_ms() + 24 * HOUR_MS, area="T1",
    ))  # fmt: skip
    accepted = signed_as(zed, AcceptedOfAnyQuantity, AcceptedOfAnyQuantity(
        buyer="elm", trade="t-1", offer="eggs-1", quantity=0, unit_price=35,
    ))  # fmt: skip
    nodes = await honest(tmp_path, url, "elm")
    async with running(*nodes), observing(tmp_path / "observer", url) as obs:
        await publish(url, founded, offer, accepted)
        await wait_until(lambda: holds(obs, offer, accepted), what="zed's log at the observer")
        for event in (offer, accepted):
            await refused_everywhere(nodes, event.id, "bad_body")
            assert await refusals_of(obs, event.id) == {"bad_body"}

        found = [f for f in await findings(obs) if f.author == "zed"]
        assert sorted((f.code, f.severity, f.evidence) for f in found) == sorted([
            ("refused_bad_body", "warning", [offer.id.hex()]),
            ("refused_bad_body", "warning", [accepted.id.hex()]),
        ])  # fmt: skip
        (of_offer,) = [f for f in found if f.evidence == [offer.id.hex()]]
        assert "no oversell" in of_offer.detail  # quoted, and read for nothing
        (of_acceptance,) = [f for f in found if f.evidence == [accepted.id.hex()]]
        assert of_acceptance.title.startswith("1 trade.accepted event(s) of zed refused")


def test_an_oversell_is_what_the_sellers_own_books_could_not_cover() -> None:
    """The fold the audit judges an acceptance with: more asked than the open offer had
    left is an oversell; an acceptance of a withdrawn or unknown offer, or of a trade the
    seller already accepted, is refused for another reason."""
    zed = Rogue("zed")
    zed.found()

    def accept(trade: str, quantity: int, offer: str = "eggs-1") -> Envelope:
        return zed.next(TradeAccepted(buyer="elm", trade=trade, offer=offer,
                                      quantity=quantity, unit_price=35))  # fmt: skip

    log = [zed.next(eggs(10))]
    log += [accept("t-1", 6), oversold := accept("t-2", 6)]  # 12 of 10
    log.append(zed.next(TradeCancelled(buyer="elm", trade="t-1")))  # releases its 6
    log += [accept("t-3", 6), accept("t-3", 6), accept("t-4", 4)]  # again; 10 of 10
    log += [late := accept("t-5", 1)]  # 11 of 10
    log += [zed.next(OfferWithdrawn(offer="eggs-1")), accept("t-6", 1), accept("t-7", 1, "x")]
    assert beyond_quantity(zed.author, log) == [oversold.id, late.id]
