"""`coopnet membership …` and `coopnet node rotate-key` against running nodes' APIs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.membership.cli import membership_table
from coopnet.node.runtime import Node
from tests.conftest import converged, running, wait_until
from tests.node.test_cli_market import coopnet
from tests.node.test_governance import federation

pytestmark = pytest.mark.timeout(120)


async def test_membership_from_the_command_line(tmp_path: Path, nats_server: NatsServer) -> None:
    dirs = await federation(tmp_path, nats_server.url)
    ana_d, ben_d, cai_d, dee_d = (str(d) for d in dirs)
    async with running(*(Node(d) for d in dirs)) as nodes:
        await wait_until(lambda: converged(*nodes), what="dee's application everywhere")
        code, view = await coopnet("membership", "list", "--data", ana_d)
        assert code == 0
        by_slug = {m["slug"]: m for m in view["members"]}
        assert by_slug["dee"]["status"] == "applicant"
        assert by_slug["dee"]["application"]["reason"] == "we grow potatoes"
        assert by_slug["dee"]["needed"] == 2
        code, _ = await coopnet("membership", "consent", "dee", "--data", ana_d)
        assert code == 0
        code, _ = await coopnet(
            "membership", "object", "dee", "--reason", "meet us first", "--data", cai_d
        )
        assert code == 0
        code, refused = await coopnet("membership", "consent", "nobody", "--data", ben_d)
        assert code == 1 and refused["code"] == "not_found"
        code, refused = await coopnet("membership", "apply", "--reason", "again", "--data", dee_d)
        assert code == 1 and refused["code"] == "not_authorized"
        code, _ = await coopnet("membership", "consent", "dee", "--data", ben_d)
        await wait_until(lambda: converged(*nodes), what="the answers everywhere")
        code, view = await coopnet("membership", "list", "--data", dee_d)
        dee = {m["slug"]: m for m in view["members"]}["dee"]
        assert dee["status"] == "applicant"
        assert dee["objections"] == [{"member": "cai", "reason": "meet us first"}]
        out = io.StringIO()
        Console(file=out, width=200).print(membership_table(view))
        assert "cai: meet us first" in out.getvalue() and "dee (me)" in out.getvalue()
        code, _ = await coopnet("membership", "withdraw", "dee", "--data", cai_d)
        assert code == 0

        async def admitted() -> bool:
            _, view = await coopnet("membership", "list", "--data", dee_d)
            return bool({m["slug"]: m for m in view["members"]}["dee"]["status"] == "admitted")

        await wait_until(admitted, what="dee admitted, seen from dee")
        code, rotated = await coopnet("node", "rotate-key", "--data", ana_d)
        assert code == 0 and rotated["nkey"].startswith("U")
        code, retired = await coopnet("membership", "retire", "--reason", "moving", "--data", ben_d)
        assert code == 0 and retired["seq"] > 1
