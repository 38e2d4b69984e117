"""Mutual credit, pure (docs/PROTOCOL.md §12): every settlement moves credit from the buyer
to the seller, so the federation's balances always sum to exactly zero. Integers (credit
cents) only, never floats."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from coopnet.protocol import errors

# Until the federation's charter sets its policy, each neighborhood may go this far below 0.
DEFAULT_CREDIT_LIMIT = 50_000


class Ledger:
    """Balances per neighborhood, built from settlements (buyer, seller, amount)."""

    def __init__(self, settlements: Iterable[tuple[str, str, int]] = ()) -> None:
        self.balances: dict[str, int] = {}
        for buyer, seller, amount in settlements:
            self.settle(buyer, seller, amount)

    def settle(self, buyer: str, seller: str, amount: int) -> None:
        if type(amount) is not int or amount < 0:
            raise ValueError(f"a settlement moves a non-negative integer, not {amount!r}")
        self.balances[buyer] = self.balances.get(buyer, 0) - amount
        self.balances[seller] = self.balances.get(seller, 0) + amount

    def balance_of(self, neighborhood: str) -> int:
        return self.balances.get(neighborhood, 0)

    def total(self) -> int:
        """Always 0: what one co-op spent, another earned."""
        return sum(self.balances.values())


def check_spend(buyer: str, balance: int, committed: int, amount: int, limit: int) -> None:
    """The buyer signs a proposal only if its balance minus open commitments minus this
    amount stays at or above minus its credit limit (raises not_authorized otherwise)."""
    after = balance - committed - amount
    if after < -limit:
        raise errors.NotAuthorized(
            f"{buyer}: balance {balance} - open {committed} - {amount} = {after}, "
            f"below the credit limit of -{limit}"
        )


def breaches(balances: Mapping[str, int], committed: Mapping[str, int], limit: int) -> list[str]:
    """Neighborhoods whose balance minus open commitments is below minus the limit."""
    names = set(balances) | set(committed)
    return sorted(n for n in names if balances.get(n, 0) - committed.get(n, 0) < -limit)
