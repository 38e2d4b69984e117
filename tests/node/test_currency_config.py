"""A node's currency (`NodeConfig.currency`): its charter's, else node.toml's older settings;
and what `GET /app/info` says of it, over real HTTP from a node on a real nats-server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from coopnet.node.cli import init_node
from coopnet.node.engine.config import ConfigError, config_path, read_config, write_config
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from coopnet.protocol import DEFAULT_CURRENCY, Currency, Identity
from coopnet.protocol.charter import Charter, Founder, dump_charter, parse_charter
from tests.conftest import NET, running

pytestmark = pytest.mark.timeout(60)
POUNDS = Currency(code="GBP", name="Riverside pounds", symbol="£", minor_units=2)


async def chartered_node(
    root: Path, currency: Currency | None, url: str = "", **settings: object
) -> Path:
    """A founder's data dir under a charter naming `currency` (None: naming none)."""
    ident = Identity.generate("oakley")
    charter = Charter(
        name="Riverside",
        founders=[
            Founder(slug="oakley", display_name="Oakley", area="T1", key=ident.public_key.hex())
        ],
        currency=currency,
    )
    text = dump_charter(charter)
    _, net = parse_charter(text)
    data = root / "oakley"
    data.mkdir(parents=True)
    (data / "charter.json").write_bytes(text)
    await init_node(
        data, slug="oakley", display_name="Oakley", area="T1", net=net, nats_url=url,
        identity=ident, settings={"charter": "charter.json", **settings},
    )  # fmt: skip
    return data


async def test_a_node_under_a_charter_counts_in_the_charters_currency(tmp_path: Path) -> None:
    # node.toml's older settings say otherwise: the charter wins.
    data = await chartered_node(tmp_path, POUNDS, currency_code="EUR", currency_name="euros")
    assert read_config(data).currency == POUNDS


async def test_a_charter_naming_no_currency_means_credits(tmp_path: Path) -> None:
    data = await chartered_node(tmp_path, None, currency_code="EUR", currency_name="euros")
    assert read_config(data).currency == DEFAULT_CURRENCY


async def test_a_node_without_a_charter_counts_in_its_settings(tmp_path: Path) -> None:
    data = tmp_path / "elm"
    await init_node(data, slug="elm", display_name="Elm", area="T1", net=NET,
                    settings={"currency_code": "HRS", "currency_name": "hours"})  # fmt: skip
    assert read_config(data).currency == Currency(
        code="HRS", name="hours", symbol="", minor_units=2
    )
    plain = tmp_path / "ash"
    await init_node(plain, slug="ash", display_name="Ash", area="T1", net=NET)
    assert read_config(plain).currency == DEFAULT_CURRENCY


async def test_the_charters_currency_is_never_written_into_node_toml(tmp_path: Path) -> None:
    data = await chartered_node(tmp_path, POUNDS)
    config = read_config(data)
    write_config(data, config)  # as `set_node_option` does, after reading it
    assert "charter_currency" not in config_path(data).read_text()
    assert read_config(data).currency == POUNDS


async def test_a_currency_written_into_node_toml_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "elm"
    await init_node(data, slug="elm", display_name="Elm", area="T1", net=NET)
    with config_path(data).open("a") as toml:
        toml.write('[charter_currency]\ncode = "GBP"\nname = "pounds"\n')
    with pytest.raises(ConfigError, match="the currency is the charter's"):
        read_config(data)


async def test_app_info_names_the_charters_currency_with_all_its_fields(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = Node(await chartered_node(tmp_path, POUNDS, nats_server.url))
    async with running(node), httpx.AsyncClient(base_url=node.api_url) as api:
        r = await api.get("/app/info")
        assert r.status_code == 200, r.text
        assert r.json()["currency"] == {
            "name": "Riverside pounds",
            "code": "GBP",
            "symbol": "£",
            "minor_units": 2,
        }
