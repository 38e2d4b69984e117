"""`coopnet balance` against a running node whose charter names a currency with Rich markup
in its name ("credits[/]", "[bold]pounds"): the amounts are printed as they are, not read as
markup (a MarkupError crashed the command before)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from coopnet.protocol.charter import Currency
from tests.conftest import running
from tests.node.test_cli_output_market import coopnet
from tests.node.test_currency_config import chartered_node

pytestmark = pytest.mark.timeout(150)


@pytest.mark.parametrize("name", ["credits[/]", "[bold red]pounds"])
async def test_balance_prints_a_currency_name_holding_markup_as_it_is(
    tmp_path: Path, nats_server: NatsServer, name: str
) -> None:
    currency = Currency(code="MKP", name=name, symbol="", minor_units=0)
    data = await chartered_node(tmp_path, currency, nats_server.url)
    async with running(Node(data)):
        shown = await coopnet("balance", "--data", str(data))
    assert shown.code == 0, shown.err
    assert f"oakley: balance 0 {name}, open commitments 0 {name}" in shown.out, shown.out
    # Nothing has settled yet: said in words, not as an empty table.
    assert "Federation ledger: no settlements yet" in shown.out, shown.out
    assert "co-op" not in shown.out, shown.out
