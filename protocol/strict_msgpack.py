"""Strict MessagePack well-formedness (docs/PROTOCOL.md §2.3), checked without recursion.

msgspec alone would accept a body that two readers can read two ways (a key given twice:
msgspec keeps the last, another decoder the first) and would skip invalid UTF-8 and ext
values inside fields it ignores; deeply nested input exhausts its recursion. This walk
refuses all of that before the typed decode runs, so every implementation reads a body the
same way.
"""

from __future__ import annotations

MAX_DEPTH = 32

# Lead byte -> number of big-endian length/size bytes that follow, for the sized families.
_STR_LEN = {0xD9: 1, 0xDA: 2, 0xDB: 4}
_BIN_LEN = {0xC4: 1, 0xC5: 2, 0xC6: 4}
_ARRAY_LEN = {0xDC: 2, 0xDD: 4}
_MAP_LEN = {0xDE: 2, 0xDF: 4}
# Scalars with a fixed payload size after the lead byte.
_FIXED = {
    0xC0: 0, 0xC2: 0, 0xC3: 0,  # nil, false, true
    0xCA: 4, 0xCB: 8,  # float 32, float 64
    0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,  # uint 8..64
    0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,  # int 8..64
}  # fmt: skip


class NotStrict(ValueError):
    """The bytes are not one strict MessagePack value; the message says where and why."""


def check_strict(data: bytes, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise NotStrict unless `data` is exactly one strict MessagePack value (§2.3)."""
    n = len(data)
    pos = 0
    # One frame per open container: [items still to read, keys seen (maps) or None (arrays)].
    stack: list[tuple[list[int], set[str] | None]] = []
    while True:
        if pos >= n:
            raise NotStrict(f"truncated at byte {pos}")
        lead = data[pos]
        pos += 1
        frame = stack[-1] if stack else None
        expecting_key = frame is not None and frame[1] is not None and frame[0][0] % 2 == 0
        container: tuple[int, bool] | None = None  # (length, is_map)
        if lead <= 0x7F or lead >= 0xE0:
            size = 0
        elif lead <= 0x8F:
            container = (lead & 0x0F, True)
            size = 0
        elif lead <= 0x9F:
            container = (lead & 0x0F, False)
            size = 0
        elif lead <= 0xBF or lead in _STR_LEN:
            if lead <= 0xBF:
                length = lead & 0x1F
            else:
                length, pos = _read_len(data, pos, _STR_LEN[lead])
            end = pos + length
            if end > n:
                raise NotStrict(f"truncated str at byte {pos}")
            try:
                text = data[pos:end].decode("utf-8")
            except UnicodeDecodeError:
                raise NotStrict(f"invalid UTF-8 in str at byte {pos}") from None
            pos = end
            if expecting_key:
                assert frame is not None and frame[1] is not None
                if text in frame[1]:
                    raise NotStrict(f"map key {text!r} appears twice")
                frame[1].add(text)
                expecting_key = False
            size = 0
        elif lead in _BIN_LEN:
            size, pos = _read_len(data, pos, _BIN_LEN[lead])
        elif lead in _FIXED:
            size = _FIXED[lead]
        elif lead in _ARRAY_LEN:
            length, pos = _read_len(data, pos, _ARRAY_LEN[lead])
            container = (length, False)
            size = 0
        elif lead in _MAP_LEN:
            length, pos = _read_len(data, pos, _MAP_LEN[lead])
            container = (length, True)
            size = 0
        else:
            raise NotStrict(f"byte {pos - 1}: 0x{lead:02x} is not allowed (ext types, 0xc1)")
        if expecting_key:
            raise NotStrict(f"map key at byte {pos - 1} is not a str")
        if pos + size > n:
            raise NotStrict(f"truncated at byte {pos}")
        pos += size
        if container is not None and container[0] > 0:
            if len(stack) + 1 > max_depth:
                raise NotStrict(f"nested deeper than {max_depth}")
            length, is_map = container
            stack.append(([length * 2 if is_map else length], set() if is_map else None))
            continue
        # A value is complete: count it off its container, and close the containers it fills.
        while stack:
            stack[-1][0][0] -= 1
            if stack[-1][0][0] > 0:
                break
            stack.pop()
        if not stack:
            break
    if pos != n:
        raise NotStrict(f"{n - pos} trailing bytes")


def _read_len(data: bytes, pos: int, width: int) -> tuple[int, int]:
    end = pos + width
    if end > len(data):
        raise NotStrict(f"truncated length at byte {pos}")
    return int.from_bytes(data[pos:end], "big"), end
