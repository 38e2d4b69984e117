"""Signing in to a running node's API in tests: an invitation made on the node, joined
over HTTP as a browser would (a cookie and the CSRF header), or an API token."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from coopnet.node.engine.accounts import Role
from coopnet.node.runtime import Node

PASSWORD = "correct horse battery"


async def invitation(node: Node, role: Role = "resident") -> str:
    """The secret of a fresh invitation to `node` (what follows `#/join/` in its link)."""
    _, secret = await node.accounts.invite(role, by="@operator")
    return secret


@contextlib.asynccontextmanager
async def session(
    node: Node,
    role: Role = "resident",
    name: str | None = None,
    *,
    contact: str = "",
    base_url: str | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in to `node` as a new account of `role` (named `name`, default the
    role; with `contact`): its session cookie in the jar, its CSRF token on every request.
    `base_url` reaches the node by another name (`http://localhost:PORT` for passkeys)."""
    async with httpx.AsyncClient(base_url=base_url or node.api_url) as client:
        r = await client.post(
            "/auth/join",
            json={"invitation": await invitation(node, role), "name": name or role,
                  "password": PASSWORD, "contact": contact},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        client.headers["x-csrf-token"] = r.json()["csrf"]
        yield client


@contextlib.asynccontextmanager
async def anonymous(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credential that looks like a browser (so the node's own-user
    trust on the loopback does not apply): what a stranger's request gets."""
    async with httpx.AsyncClient(
        base_url=node.api_url, headers={"sec-fetch-site": "none"}
    ) as client:
        yield client
