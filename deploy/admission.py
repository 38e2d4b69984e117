"""The operator's admission key: the key whose tickets let a new neighborhood found its log
(docs/PROTOCOL.md §16.6, docs/OPERATIONS.md §3).

`federation init` makes it, names its public key in the charter (`admission_key`) and keeps
its seed in `DIR/admission.key` (hex, 0600), next to the NATS operator keys: whoever holds it
decides which keys may found a log in the federation, as whoever holds the account key
decides who may connect. `neighborhood add` signs a ticket for the new neighborhood's slug
and key; its `node.founded` carries it, and every node and observer checks it offline.
A squatter (a member founding a slug the operator is about to add) has no ticket, so its
log is refused everywhere with `wrong_key`.
"""

from __future__ import annotations

import os
from pathlib import Path

import nacl.signing

from coopnet.node.engine.config import ConfigError
from coopnet.protocol.admission import issue_ticket
from coopnet.protocol.charter import Charter

ADMISSION_KEY_FILE = "admission.key"


def save_admission_key(root: Path, key: nacl.signing.SigningKey) -> Path:
    """Keep the admission key's seed in `root/admission.key` (hex, 0600); never overwrite."""
    path = root / ADMISSION_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(bytes(key).hex() + "\n")
    return path


def admission_ticket(
    root: Path, charter: Charter, net: bytes, slug: str, key: bytes
) -> bytes | None:
    """The ticket admitting `key` to found `slug`'s log, or None if the charter asks for
    none (a federation made before tickets). Raises ConfigError if the charter names an
    admission key and `root/admission.key` is missing or is not that key."""
    wanted = charter.admission_public_key()
    if wanted is None:
        return None
    path = root / ADMISSION_KEY_FILE
    try:
        seed = bytes.fromhex(path.read_text().strip())
        signing = nacl.signing.SigningKey(seed)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the admission key ({exc})") from None
    if bytes(signing.verify_key) != wanted:
        raise ConfigError(f"{path} is not the admission key the charter names")
    return issue_ticket(signing, net, slug, key)
