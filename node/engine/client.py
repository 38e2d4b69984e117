"""The CLI's side of a running node's HTTP API: where it listens, and one call to it.

A running node writes its API's URL to `DATA/api.url` (`API_URL_FILE`) and a coordinator's
API token to `DATA/api.token` (`API_TOKEN_FILE`, 0600), which every call sends; the domains'
commands (`coopnet offer …`, `coopnet aid …`, `coopnet membership …`) call it as an app
would, so the CLI can do nothing the API refuses.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import httpx

from coopnet.node.engine.config import ConfigError

API_URL_FILE = "api.url"  # where a running node says where its API listens (for the CLI)
# The CLI's API token (a coordinator's), written 0600 by the node at every start (docs/APP.md).
API_TOKEN_FILE = "api.token"


class ApiError(Exception):
    """The node answered with an error: its HTTP `status`, the stable `code` and `message`
    of its JSON error body (docs/PROTOCOL.md §7 codes and the API's own)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


def call_api(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """Call the node running in `args.data` and return its JSON answer.

    Raises ConfigError when no node runs there or it does not answer, ApiError when it
    answers with an error.
    """
    url_file = Path(args.data) / API_URL_FILE
    try:
        base = url_file.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"no running node in {args.data}: start it with `coopnet node run --data {args.data}`"
        ) from None
    headers = {}
    try:
        token = (Path(args.data) / API_TOKEN_FILE).read_text().strip()
        headers["Authorization"] = f"Bearer {token}"
    except OSError:
        pass  # the node's own OS user on the loopback needs none (docs/APP.md)
    try:
        r = httpx.request(method, base + path, json=body, headers=headers, timeout=30)
    except httpx.TransportError as exc:
        raise ConfigError(f"the node at {base} does not answer ({exc})") from None
    data = r.json() if r.content else None
    if r.status_code >= 400:
        assert isinstance(data, dict)
        raise ApiError(r.status_code, data.get("code", "error"), data.get("message", ""))
    return data


__all__ = ["API_TOKEN_FILE", "API_URL_FILE", "ApiError", "call_api"]
