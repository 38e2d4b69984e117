"""The docs run (issue 17): the README tour and docs/OPERATIONS.md, walked block by block
against real processes, exactly as written, by the rules each states at its top."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.shell_blocks import (
    PLACEHOLDER_RE,
    Step,
    output_matches,
    part,
    placeholder_sources,
    steps_of_block,
    walked_steps,
)
from tests.docs.walker import DocStepFailed, walking

ROOT = Path(__file__).resolve().parents[2]

WALKED = [("README.md", "A tour"), ("docs/OPERATIONS.md", None)]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("document", "heading"), WALKED)
def test_the_document_runs_as_written(document: str, heading: str | None, tmp_path: Path) -> None:
    """Every walked step exits and prints what its document says, against real nodes,
    hubs and observers, and nothing it started is left running."""
    text = (ROOT / document).read_text()
    steps = walked_steps(text, heading, document)
    assert len(steps) >= 10, f"{document}: the walk found only {len(steps)} steps"
    root = tmp_path.resolve()
    with walking(root, placeholder_sources(text, heading)) as walk:
        walk.run(steps)


@pytest.mark.parametrize(("document", "heading"), WALKED)
def test_the_document_states_its_rules(document: str, heading: str | None) -> None:
    """Each walked part says how it is walked, and every placeholder its blocks use has a
    source in its table."""
    text = (ROOT / document).read_text()
    sources = placeholder_sources(text, heading)
    section, _ = part(text, heading)
    rules = ["tests/docs/test_docs_run.py", "ending in `&`", "`# → text`", "`exits N`", "free port"]
    assert [r for r in rules if r not in " ".join(section.split())] == []
    used = {
        name
        for step in walked_steps(text, heading, document)
        for name in PLACEHOLDER_RE.findall(step.command)
    }
    assert used <= set(sources), f"placeholders without a source: {used - set(sources)}"


def walk_block(tmp_path: Path, block: str, table: str = "") -> None:
    steps = steps_of_block(1, block.strip("\n").splitlines(), "doc.md")
    with walking(tmp_path.resolve(), placeholder_sources(table, None)) as walk:
        walk.run(steps)


def test_a_command_whose_exit_code_differs_from_the_docs_fails_the_walk(tmp_path: Path) -> None:
    walk_block(tmp_path, "false          # exits 1 when nothing is true\ntrue")
    with pytest.raises(DocStepFailed, match=r"doc\.md:1: `false` exited 1, the document says 0"):
        walk_block(tmp_path, "false")


def test_a_command_whose_output_differs_from_the_docs_fails_the_walk(tmp_path: Path) -> None:
    walk_block(tmp_path, "echo 'signed offer.posted #3'\n# → signed offer.posted #…")
    with pytest.raises(DocStepFailed, match="printed no line like `offer o-…`"):
        walk_block(tmp_path, "echo 'signed offer.posted #3'\n# → offer o-…")


TABLE = """
| placeholder | field | of what this printed, with `--json` |
|---|---|---|
| `<offer-id>` | `offer` | `echo` |
"""


def test_a_placeholder_is_filled_from_the_json_its_table_names(tmp_path: Path) -> None:
    walk_block(
        tmp_path,
        """
echo '{"offer": "o-1234", "item": "bread"}'
echo got <offer-id>
# → got o-1234
""",
        TABLE,
    )


def test_a_placeholder_without_a_source_fails_the_walk(tmp_path: Path) -> None:
    with pytest.raises(DocStepFailed, match=r"<trade-id> is in no placeholder table"):
        walk_block(tmp_path, 'echo \'{"offer": "o-1"}\'\necho <trade-id>', TABLE)
    with pytest.raises(DocStepFailed, match=r"which no earlier step ran"):
        walk_block(tmp_path, "true\ntrue <offer-id>", TABLE)
    with pytest.raises(DocStepFailed, match=r"is the `offer` field of `echo … --json`, but"):
        walk_block(tmp_path, 'echo \'{"id": "o-1"}\'\necho <offer-id>', TABLE)


def test_a_background_command_is_waited_for_and_stopped_with_ctrl_c(tmp_path: Path) -> None:
    # a server on a port the block names: mapped to a free one, waited for, then stopped
    serve = (
        "import http.server as h, sys; h.HTTPServer(('127.0.0.1', int(sys.argv[1][10:])), "
        "h.SimpleHTTPRequestHandler).serve_forever()"
    )
    walk_block(
        tmp_path,
        f'python3 -c "{serve}" 127.0.0.1:8765 &\n'
        "python3 -c 'import urllib.request as u; u.urlopen(\"http://127.0.0.1:8765/\")'",
    )
    log = (tmp_path / ".docs-walk-0.log").read_text()
    assert '"GET / HTTP/1.1" 200' in log  # the same free port in both lines
    assert "KeyboardInterrupt" in log  # stopped as by Ctrl-C


def test_a_block_not_run_must_say_why() -> None:
    assert (
        steps_of_block(1, ["# not run by the docs test: systemd", "systemctl start x"], "d") == []
    )
    with pytest.raises(ValueError, match="must say why"):
        steps_of_block(1, ["# not run by the docs test:", "systemctl start x"], "d")


def test_continuations_comments_and_background_are_read_as_a_shell_does() -> None:
    steps = steps_of_block(
        1,
        [
            'coopnet federation init ./r --name "A # B" \\',
            "    --neighborhoods a1,b2     # --hubs 3 for a cluster",
            "coopnet federation up ./r &   # exits 0",
        ],
        "d",
    )
    assert steps == [
        Step('coopnet federation init ./r --name "A # B" --neighborhoods a1,b2', "d:1"),
        Step("coopnet federation up ./r", "d:3", background=True),
    ]


def test_an_ellipsis_stands_for_anything_nothing_included() -> None:
    assert output_matches("… oakley … founder … yes …", "oakley   founder   yes   up")
    assert output_matches("… oakley … founder …", "│ oakley │ founder │")
    assert not output_matches("… oakley … founder …", "founder oakley")
