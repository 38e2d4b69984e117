"""The CLI's side of a running node's HTTP API: where it listens, and one call to it.

A running node writes its API's URL to `DATA/api.url` (`API_URL_FILE`) and a coordinator's
API token to `DATA/api.token` (`API_TOKEN_FILE`, 0600), which every call sends; the domains'
commands (`coopnet offer …`, `coopnet aid …`, `coopnet membership …`) call it as an app
would, so the CLI can do nothing the API refuses.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

import httpx

from coopnet.node.engine.config import ConfigError, read_config
from coopnet.node.engine.money import (
    AmountError,
    Currency,
    currency_of,
    format_amount,
    parse_amount,
)

API_URL_FILE = "api.url"  # where a running node says where its API listens (for the CLI)
# The CLI's API token (a coordinator's), written 0600 by the node at every start (docs/APP.md).
API_TOKEN_FILE = "api.token"


class ApiError(Exception):
    """The node answered with an error: its HTTP `status`, the stable `code` and `message`
    of its JSON error body (docs/PROTOCOL.md §7 codes and the API's own)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


def call_api(
    args: argparse.Namespace, method: str, path: str, body: Any = None, *, token: str = ""
) -> Any:
    """Call the node running in `args.data` and return its JSON answer.

    As the node's own OS user (its `api.token` file, or none on the loopback), or, with
    `token`, as the account whose API token it is (a resident's `--token`).
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
    if not token:
        # The node's own OS user on the loopback needs none (docs/APP.md).
        with contextlib.suppress(OSError):
            token = (Path(args.data) / API_TOKEN_FILE).read_text().strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        r = httpx.request(method, base + path, json=body, headers=headers, timeout=30)
    except httpx.TransportError as exc:
        raise ConfigError(f"the node at {base} does not answer ({exc})") from None
    data = r.json() if r.content else None
    if r.status_code >= 400:
        assert isinstance(data, dict)
        raise ApiError(r.status_code, data.get("code", "error"), data.get("message", ""))
    return data


class NodeCommand:
    """One command's view of its node (a domain's CLI subclasses it): the API, the node's
    slug and its currency, for amounts typed (`cents`) and shown (`money`)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        config = read_config(Path(args.data))
        self.me = config.slug
        self.currency: Currency = currency_of(config)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """`call_api` on this command's node."""
        return call_api(self.args, method, path, body)

    def money(self, cents: int) -> str:
        """`cents` (integer minor units) in the currency, for people: "4.50 credits"."""
        return format_amount(cents, self.currency)

    def cents(self, option: str, text: str) -> int:
        """An amount typed for `option` in the currency, as integer cents; ConfigError
        naming the option when it does not read as one (node/engine/money.py)."""
        try:
            return parse_amount(text, self.currency)
        except AmountError as exc:
            raise ConfigError(f"{option}: {exc}") from None


__all__ = ["API_TOKEN_FILE", "API_URL_FILE", "ApiError", "NodeCommand", "call_api"]
