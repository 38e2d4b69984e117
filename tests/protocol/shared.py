"""Helpers shared by the protocol tests: MessagePack value strategies, table paths."""

from __future__ import annotations

from hypothesis import strategies as st

# Any value MessagePack can carry (what a hostile peer could send inside a frame).
msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=40,
)


def path_to(table: dict[str, dict[str, str]], target: str, start: str = "none") -> list[str]:
    """The shortest list of events leading from `start` to `target` in a transition table."""
    frontier: list[tuple[str, list[str]]] = [(start, [])]
    seen = {start}
    while frontier:
        state, path = frontier.pop(0)
        if state == target:
            return path
        for event, nxt in table[state].items():
            if nxt not in seen:
                seen.add(nxt)
                frontier.append((nxt, [*path, event]))
    raise AssertionError(f"{target} cannot be reached from {start}")
