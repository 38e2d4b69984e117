"""A node signs no display name that hides characters (PROTOCOL.md §18, signers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coopnet.node.cli import init_node
from coopnet.node.engine.config import ConfigError
from tests.conftest import NET


@pytest.mark.parametrize("name", ["Trusted\u202e", "Al\u200bpha", "Oak\nley", "Elm\x1b[2J"])
async def test_init_refuses_a_display_name_with_format_or_control_characters(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(ConfigError, match="invisible or control characters"):
        await init_node(tmp_path / "n", slug="oakley", display_name=name, area="T1", net=NET)
    assert not (tmp_path / "n" / "node.db").exists()


async def test_init_takes_any_script(tmp_path: Path) -> None:
    config = await init_node(
        tmp_path / "n", slug="oakley", display_name="Дубки 橡树 Chênes", area="T1", net=NET
    )
    assert config.display_name == "Дубки 橡树 Chênes"
