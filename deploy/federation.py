"""A federation on disk: what `coopnet federation init` and `coopnet neighborhood add|retire|
rotate-key` write, and where (docs/OPERATIONS.md).

    DIR/charter.json            founders with their keys, policies (PROTOCOL.md §16)
    DIR/charter.net             net = SHA-256(canonical charter)[:16], hex
    DIR/federation.toml         hubs and their ports
    DIR/nats/                   operator, account and system keys and JWTs (nats_auth),
                                hub.conf or hub-1..3.conf, admin.creds (the operator's user)
    DIR/neighborhoods/<slug>/   node.toml, node.key, node.next.key (NKey seeds, 0600),
                                nats.creds (its own user: the node key is its NATS identity),
                                charter.json, node.db; leaf.conf for a leaf neighborhood
    DIR/observer/               observer.toml, nats.creds (reads only), charter.json
"""

from __future__ import annotations

import datetime
import shutil
import tomllib
from pathlib import Path

import anyio
import anyio.to_thread
import msgspec

from coopnet.deploy.nats_auth import Authority, admin_permissions, node_permissions
from coopnet.deploy.nats_auth import observer_permissions as observer_perms
from coopnet.deploy.nats_config import cluster_configs, hub_config, leaf_config
from coopnet.node.cli import init_node
from coopnet.node.engine.config import (
    ConfigError,
    NodeConfig,
    read_config,
    read_identity,
    write_config,
)
from coopnet.protocol import Identity
from coopnet.protocol.charter import Charter, Founder, Policies, dump_charter, parse_charter
from coopnet.protocol.envelope import AUTHOR_RE


class Ports(msgspec.Struct, kw_only=True):
    """Where the hubs listen; one entry per hub (1 or 3)."""

    client: list[int]
    http: list[int]
    leaf: list[int]
    route: list[int] = msgspec.field(default_factory=list)


class FederationConfig(msgspec.Struct, kw_only=True):
    name: str
    hubs: int
    ports: Ports
    host: str = "127.0.0.1"
    sync_always: bool = True  # JetStream fsyncs before it acknowledges (see OPERATIONS.md)
    next_leaf_port: int = 0  # the next port `neighborhood add --leaf` gives a leaf server

    @property
    def urls(self) -> str:
        return ",".join(f"nats://{self.host}:{p}" for p in self.ports.client)

    @property
    def leaf_urls(self) -> list[str]:
        return [f"nats-leaf://{self.host}:{p}" for p in self.ports.leaf]

    def hub_configs(self, root: Path) -> list[Path]:
        if self.hubs == 1:
            return [root / "nats" / "hub.conf"]
        return [root / "nats" / f"hub-{i}.conf" for i in range(1, self.hubs + 1)]


def default_ports(base: int, hubs: int) -> Ports:
    """Client ports from `base` (4222 by default), monitoring from base+4000, leaf links from
    base+3200, routes from base+2000: the usual NATS ports, one more per extra hub."""
    n = range(hubs)
    return Ports(
        client=[base + i for i in n],
        http=[base + 4000 + i for i in n],
        leaf=[base + 3200 + i for i in n],
        route=[base + 2000 + i for i in n] if hubs > 1 else [],
    )


def neighborhood_dir(root: Path, slug: str) -> Path:
    return root / "neighborhoods" / slug


def read_federation(root: Path) -> FederationConfig:
    path = root / "federation.toml"
    try:
        return msgspec.convert(tomllib.loads(path.read_text()), FederationConfig)
    except FileNotFoundError:
        raise ConfigError(
            f"{path} not found: is {root} a federation (`federation init`)?"
        ) from None
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def write_federation(root: Path, config: FederationConfig) -> None:
    p = config.ports
    (root / "federation.toml").write_text(
        f"name = {msgspec.json.encode(config.name).decode()}\n"
        f"hubs = {config.hubs}\n"
        f'host = "{config.host}"\n'
        f"sync_always = {'true' if config.sync_always else 'false'}\n"
        f"next_leaf_port = {config.next_leaf_port}\n\n"
        f"[ports]\nclient = {p.client}\nhttp = {p.http}\nleaf = {p.leaf}\nroute = {p.route}\n"
    )


def charter_of(root: Path) -> tuple[Charter, bytes]:
    try:
        return parse_charter((root / "charter.json").read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{root / 'charter.json'} not found") from None


async def init_federation(
    root: Path,
    *,
    name: str,
    slugs: list[str],
    hubs: int = 1,
    base_port: int = 4222,
    policies: Policies | None = None,
    sync_always: bool = True,
    ports: Ports | None = None,
) -> FederationConfig:
    """Write a whole federation: charter, NATS authority and hub configs, one node per
    founding neighborhood with its credentials, and the observer's credentials."""
    if hubs not in (1, 3):
        raise ConfigError("--hubs is 1 (one server) or 3 (a cluster)")
    for slug in slugs:
        check_slug(slug)
    if len(set(slugs)) != len(slugs) or not slugs:
        raise ConfigError("give one or more distinct neighborhood slugs")
    idents = {slug: Identity.generate(slug) for slug in slugs}
    charter = Charter(
        name=name,
        founders=[
            Founder(
                slug=s, display_name=_title(s), area=f"N{i + 1}", key=idents[s].public_key.hex()
            )
            for i, s in enumerate(slugs)
        ],
        policies=policies or Policies(),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    config = FederationConfig(
        name=name,
        hubs=hubs,
        ports=ports or default_ports(base_port, hubs),
        sync_always=sync_always,
        next_leaf_port=base_port + 100,
    )
    authority, net = await anyio.to_thread.run_sync(_write_federation_files, root, charter, config)
    for founder in charter.founders:
        await _write_neighborhood(
            root, config, authority, idents[founder.slug], founder.display_name, founder.area
        )
    await anyio.to_thread.run_sync(write_observer, root, config, authority, net)
    return config


def _write_federation_files(
    root: Path, charter: Charter, config: FederationConfig
) -> tuple[Authority, bytes]:
    if (root / "charter.json").exists():
        raise ConfigError(f"{root} already holds a federation")
    root.mkdir(parents=True, exist_ok=True)
    charter_bytes = dump_charter(charter)
    _, net = parse_charter(charter_bytes)
    (root / "charter.json").write_bytes(charter_bytes)
    (root / "charter.net").write_text(net.hex() + "\n")
    write_federation(root, config)
    authority = Authority.generate()
    authority.save(root)
    authority.user_creds("admin", admin_permissions()).write(root / "nats" / "admin.creds")
    write_hub_configs(root, config, authority)
    return authority, net


def write_hub_configs(root: Path, config: FederationConfig, authority: Authority) -> list[Path]:
    nats = root / "nats"
    p = config.ports
    paths = config.hub_configs(root)
    if config.hubs == 1:
        texts = [
            hub_config(
                authority, server_name="hub", port=p.client[0], http_port=p.http[0],
                leaf_port=p.leaf[0], store_dir=(nats / "js").resolve(),
                jwt_dir=(nats / "jwt").resolve(), sync_always=config.sync_always, host=config.host,
            )
        ]  # fmt: skip
    else:
        texts = cluster_configs(
            authority, ports=p.client, route_ports=p.route, http_ports=p.http, leaf_ports=p.leaf,
            store_dirs=[(nats / f"js-{i}").resolve() for i in range(1, 4)],
            jwt_dirs=[(nats / f"jwt-{i}").resolve() for i in range(1, 4)],
            sync_always=config.sync_always, host=config.host,
        )  # fmt: skip
    for path, text in zip(paths, texts, strict=True):
        path.write_text(text)
    return paths


async def _write_neighborhood(
    root: Path,
    config: FederationConfig,
    authority: Authority,
    ident: Identity,
    display_name: str,
    area: str,
    *,
    about: str = "",
    reason: str = "",
    leaf_port: int | None = None,
) -> Path:
    charter, net = charter_of(root)
    data = neighborhood_dir(root, ident.author)
    data.mkdir(parents=True)
    shutil.copyfile(root / "charter.json", data / "charter.json")
    url = f"nats://127.0.0.1:{leaf_port}" if leaf_port else config.urls
    policy = charter.policies
    await init_node(
        data,
        slug=ident.author,
        display_name=display_name,
        area=area,
        net=net,
        nats_url=url,
        identity=ident,
        settings={
            "charter": "charter.json",
            "nats_creds": "nats.creds",
            "credit_limit": policy.credit_limit,
            "escalate_critical_s": policy.escalate_critical_s,
            "escalate_high_s": policy.escalate_high_s,
            "escalate_normal_s": policy.escalate_normal_s,
            "apply_about": about,
            "apply_reason": reason,
        },
    )
    issue_node_creds(root, ident.author, authority)
    if leaf_port:
        (data / "leaf.conf").write_text(
            leaf_config(
                slug=ident.author,
                port=leaf_port,
                hub_leaf_urls=config.leaf_urls,
                creds_path=(data / "nats.creds").resolve(),
            )
        )
    return data


def issue_node_creds(root: Path, slug: str, authority: Authority) -> str:
    """(Re)write a node's creds for the key it signs with now; return its NATS user key."""
    data = neighborhood_dir(root, slug)
    ident = read_identity(data, slug)
    creds = authority.user_creds(f"node-{slug}", node_permissions(slug), seed=ident.seed)
    creds.write(data / "nats.creds")
    return creds.public_key


def write_observer(root: Path, config: FederationConfig, authority: Authority, net: bytes) -> Path:
    obs = root / "observer"
    obs.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / "charter.json", obs / "charter.json")
    authority.user_creds("observer-observer", observer_perms("observer")).write(obs / "nats.creds")
    (obs / "observer.toml").write_text(
        'name = "observer"\n'
        f'net = "{net.hex()}"\n'
        f'nats_url = "{config.urls}"\n'
        'nats_creds = "nats.creds"\n'
        'charter = "charter.json"\n'
    )
    return obs


async def add_neighborhood(
    root: Path,
    slug: str,
    *,
    display_name: str = "",
    area: str = "local",
    about: str = "",
    reason: str,
    leaf: bool = False,
) -> Path:
    """A new neighborhood's identity, credentials and config; it applies when it first runs.
    Nothing on the hubs changes: its user JWT is signed by the account they already trust."""
    config = read_federation(root)
    check_slug(slug)
    if neighborhood_dir(root, slug).exists():
        raise ConfigError(f"{neighborhood_dir(root, slug)} exists already")
    authority = Authority.load(root)
    leaf_port = None
    if leaf:
        leaf_port = config.next_leaf_port
        config.next_leaf_port += 1
        write_federation(root, config)
    return await _write_neighborhood(
        root, config, authority, Identity.generate(slug), display_name or _title(slug), area,
        about=about, reason=reason, leaf_port=leaf_port,
    )  # fmt: skip


def move_to_cluster(root: Path, *, base_port: int | None = None) -> FederationConfig:
    """Rewrite the hub configs for a three-server cluster, from the same operator keys, and
    point every node (and the observer) at the three servers. The stream's replicas are
    raised by `federation up` (or the operator's admin user) once the cluster runs."""
    config = read_federation(root)
    if config.hubs == 3:
        raise ConfigError(f"{root} already runs on a three-server cluster")
    base = config.ports.client[0] if base_port is None else base_port
    config = msgspec.structs.replace(config, hubs=3, ports=default_ports(base, 3))
    write_federation(root, config)
    write_hub_configs(root, config, Authority.load(root))
    (root / "nats" / "hub.conf").unlink(missing_ok=True)
    for data in sorted((root / "neighborhoods").iterdir()):
        if (data / "node.toml").exists() and not (data / "leaf.conf").exists():
            set_node_option(root, data.name, nats_url=config.urls)
        elif (data / "leaf.conf").exists():
            leaf = leaf_config(
                slug=data.name,
                port=read_leaf_port(data),
                hub_leaf_urls=config.leaf_urls,
                creds_path=(data / "nats.creds").resolve(),
            )
            (data / "leaf.conf").write_text(leaf)
    _, net = charter_of(root)
    write_observer(root, config, Authority.load(root), net)
    return config


def read_leaf_port(data: Path) -> int:
    for line in (data / "leaf.conf").read_text().splitlines():
        if line.startswith("port:"):
            return int(line.split(":", 1)[1])
    raise ConfigError(f"{data / 'leaf.conf'} names no port")


def node_user(root: Path, slug: str) -> str:
    """The NATS user public key a neighborhood's creds are issued to now."""
    from coopnet.node.engine.config import nkey_public

    data = neighborhood_dir(root, slug)
    return nkey_public(read_identity(data, read_config(data).slug).seed)


def read_config_of(root: Path, slug: str) -> NodeConfig:
    return read_config(neighborhood_dir(root, slug))


def set_node_option(root: Path, slug: str, **values: object) -> None:
    data = neighborhood_dir(root, slug)
    write_config(data, msgspec.structs.replace(read_config(data), **values))


def check_slug(slug: str) -> None:
    """A neighborhood's slug is its author name on the wire (PROTOCOL.md §2.1)."""
    if not AUTHOR_RE.fullmatch(slug):
        raise ConfigError(
            f"slug {slug!r} is not a valid author name: 2-32 characters, a lowercase letter "
            "then lowercase letters, digits or '-' (PROTOCOL.md §2.1), e.g. 'oakley' or 'a1'"
        )


def _title(slug: str) -> str:
    return slug.replace("-", " ").title()
