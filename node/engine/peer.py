"""Which OS user holds the other end of a loopback TCP connection (Linux's /proc/net/tcp).

PostgreSQL's `peer` authentication asks the kernel who is on the other end of a Unix
socket; for TCP over the loopback, Linux lists every socket with its owner's uid in
`/proc/net/tcp` and `/proc/net/tcp6`. The node uses it to know its own OS user's CLI and
scripts (docs/APP.md, "Who may call what"). Elsewhere (no /proc) nobody is a peer.
"""

from __future__ import annotations

import ipaddress
import socket

_TABLES = {socket.AF_INET: "/proc/net/tcp", socket.AF_INET6: "/proc/net/tcp6"}


def _hex_address(host: str, port: int) -> tuple[socket.AddressFamily, str]:
    """The address as /proc/net/tcp writes it: the kernel's 32-bit words, each in host
    (little-endian) byte order, in hex, then the port in hex."""
    ip = ipaddress.ip_address(host)
    if ip.version == 4:
        return socket.AF_INET, f"{int.from_bytes(ip.packed, 'little'):08X}:{port:04X}"
    packed = ip.packed
    words = "".join(f"{int.from_bytes(packed[i : i + 4], 'little'):08X}" for i in range(0, 16, 4))
    return socket.AF_INET6, f"{words}:{port:04X}"


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def peer_uid(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The uid owning the client end of the TCP connection `client` → `server` (both on
    this machine), or None when it cannot be told."""
    try:
        family, local = _hex_address(*client)
        _, remote = _hex_address(*server)
        with open(_TABLES[family], encoding="ascii") as table:
            next(table)  # the header
            for line in table:
                fields = line.split()
                if fields[1] == local and fields[2] == remote:
                    return int(fields[7])
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return None


__all__ = ["is_loopback", "peer_uid"]
