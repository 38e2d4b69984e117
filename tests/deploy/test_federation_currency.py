"""The charter names the currency (PROTOCOL.md §16.1): `coopnet federation init
--currency-code … --currency-name … --currency-symbol … --minor-units …` writes it into
charter.json, says it, and every node that `federation up` runs counts in it; a value the
protocol refuses fails in one line naming the flag, before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import pytest

from coopnet.deploy import federation as fed
from coopnet.deploy.federation import read_config_of
from coopnet.protocol.charter import DEFAULT_CURRENCY, Currency, parse_charter
from tests.deploy.test_operator_cli import coopnet, init_args, one_error_line
from tests.deploy.test_operator_cli_up import federation_up
from tests.processes import free_port, free_ports

pytestmark = pytest.mark.timeout(240)

RIVERSIDE = Currency(code="RVP", name="Riverside pounds", symbol="£", minor_units=2)
RIVERSIDE_FLAGS = (
    "--currency-code", "RVP", "--currency-name", "Riverside pounds", "--currency-symbol", "£",
)  # fmt: skip


def test_init_writes_the_currency_and_every_node_of_up_counts_in_it(tmp_path: Path) -> None:
    root = tmp_path / "riverside"
    made = coopnet(*init_args(root, *RIVERSIDE_FLAGS, "--port", str(free_port()), "--json"))
    assert made.returncode == 0, made.stderr
    said = json.loads(made.stdout)["currency"]
    assert said == {"code": "RVP", "name": "Riverside pounds", "symbol": "£", "minor_units": 2}
    charter, _ = parse_charter((root / "charter.json").read_bytes())
    assert charter.currency == RIVERSIDE
    assert json.loads((root / "charter.json").read_text())["currency"] == said
    for slug in ("oakley", "elmwood"):  # each node reads its copy of the charter
        assert read_config_of(root, slug).currency == RIVERSIDE

    with federation_up(root):
        for slug in ("oakley", "elmwood"):
            base = (fed.neighborhood_dir(root, slug) / "api.url").read_text().strip()
            info = httpx.get(base + "/app/info", timeout=10)
            assert info.status_code == 200, info.text
            assert info.json()["currency"] == said, slug


def test_init_says_the_currency_it_wrote(tmp_path: Path) -> None:
    made = coopnet(
        *init_args(tmp_path / "f", *RIVERSIDE_FLAGS, "--minor-units", "0", "--port",
                   str(free_port()))
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "currency      Riverside pounds (RVP, £, 0 decimal places)" in made.stdout
    charter, _ = parse_charter((tmp_path / "f" / "charter.json").read_bytes())
    assert charter.currency == Currency(
        code="RVP", name="Riverside pounds", symbol="£", minor_units=0
    )


def test_one_flag_fills_the_others_from_the_default(tmp_path: Path) -> None:
    made = coopnet(*init_args(tmp_path / "f", "--currency-code", "HRS", "--port",
                              str(free_port()), "--json"))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["currency"] == {
        "code": "HRS", "name": "credits", "symbol": "", "minor_units": 2,
    }  # fmt: skip


def test_without_flags_the_charter_names_no_currency_and_means_the_default(
    tmp_path: Path,
) -> None:
    """A charter without `currency` keeps the `net` it would have had before currencies
    (§16.1): init leaves the key out unless a flag is given, and reports the default."""
    made = coopnet(*init_args(tmp_path / "f", "--port", str(free_port()), "--json"))
    assert made.returncode == 0, made.stderr
    assert "currency" not in json.loads((tmp_path / "f" / "charter.json").read_text())
    assert json.loads(made.stdout)["currency"] == {
        "code": "CRD", "name": "credits", "symbol": "", "minor_units": 2,
    }  # fmt: skip
    assert read_config_of(tmp_path / "f", "oakley").currency == DEFAULT_CURRENCY


def test_init_federation_passes_the_currency_to_the_charter(tmp_path: Path) -> None:
    client, http, leaf = free_ports(3)
    ports = fed.Ports(client=[client], http=[http], leaf=[leaf])
    anyio.run(
        lambda: fed.init_federation(
            tmp_path / "f", name="T", slugs=["ana"], ports=ports, currency=RIVERSIDE
        )
    )
    charter, _ = fed.charter_of(tmp_path / "f")
    assert charter.currency == RIVERSIDE


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (("--currency-code", "rv"), "--currency-code 'rv' is refused: three capital letters"),
        (("--currency-code", "RVPX"), "--currency-code 'RVPX' is refused"),
        (("--currency-name", ""), "--currency-name '' is refused: 1-40 characters"),
        (("--currency-name", "x" * 41), "--currency-name "),
        (("--currency-symbol", "£££££££££"), "--currency-symbol '£££££££££' is refused"),
        (("--minor-units", "5"), "--minor-units 5 is refused: the decimal places of amounts"),
        (("--minor-units", "-1"), "--minor-units -1 is refused"),
        (("--currency-name", "pounds\x07"), "--currency-name 'pounds\\x07' is refused: no "
         "control characters"),
    ],
)  # fmt: skip
def test_a_currency_the_protocol_refuses_fails_in_one_line(
    tmp_path: Path, flags: tuple[str, ...], named: str
) -> None:
    root = tmp_path / "f"
    line = one_error_line(coopnet(*init_args(root, *flags, "--port", str(free_port()))))
    assert named in line, line
    assert "(PROTOCOL.md §16.1)" in line
    assert not root.exists()  # refused before anything is written
