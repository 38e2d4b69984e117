"""The client side of the bus's TLS: an SSL context that trusts the federation's CA.

A federation whose hubs speak TLS (docs/OPERATIONS.md §11) gives every node and observer a
copy of its CA certificate (`nats-ca.pem`, named by `nats_ca` in the config); the client
then verifies the hub's certificate against that CA only, and the hub's name against the
certificate's subject alternative names, before it sends its credentials.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from coopnet.node.engine.config import ConfigError


def client_context(ca_file: str | Path | None) -> ssl.SSLContext:
    """A TLS client context (TLS 1.2 or later, certificate and host name checked) that
    trusts only the CA certificates in the PEM file `ca_file`; with None, the system's trust
    store (a hub whose certificate a public CA issued).

    Raises ConfigError when the file is missing or holds no usable certificate."""
    if ca_file is None:
        context = ssl.create_default_context()
    else:
        try:
            context = ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{ca_file}: cannot read the federation's CA certificate ({exc})"
            ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
