"""A federation on disk: what `coopnet federation init` and `coopnet neighborhood add|retire|
rotate-key` write, and where (docs/OPERATIONS.md).

    DIR/charter.json            founders with their keys, policies (PROTOCOL.md §16)
    DIR/charter.net             net = SHA-256(canonical charter)[:16], hex
    DIR/federation.toml         hubs and their ports
    DIR/admission.key           the seed whose tickets admit new neighborhoods' keys (0600)
    DIR/nats/                   operator, account and system keys and JWTs (nats_auth),
                                hub.conf or hub-1..3.conf, admin.creds (the operator's user),
                                route.secret (a cluster's route password, 0600)
    DIR/nats/tls/               with TLS: the federation CA and each hub's certificate and
                                key (deploy/tls.py); nodes, leaves and the observer hold a
                                copy of the CA as nats-ca.pem
    DIR/neighborhoods/<slug>/   node.toml, node.key, node.next.key (NKey seeds, 0600),
                                nats.creds (its own user: the node key is its NATS identity),
                                charter.json, node.db; leaf.conf for a leaf neighborhood
    DIR/observer/               observer.toml, nats.creds (reads only), charter.json
    DIR/run/, DIR/logs/         `federation up`'s servers (deploy/launcher.py), pids and
                                requests (deploy/control.py) and each node's log;
                                `neighborhoods/<slug>/retired` once retired
    DIR/replaced-<UTC time>/    a federation `init --force` replaced, set aside whole

Failures the operator can act on are ConfigErrors with a hint (deploy/cli.py prints them
as one line).
"""

from __future__ import annotations

import datetime
import shutil
import ssl
import tomllib
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
import msgspec
import nacl.signing

from coopnet.deploy.admission import admission_ticket, save_admission_key
from coopnet.deploy.nats_auth import Authority, BusLimits, admin_permissions, node_permissions
from coopnet.deploy.nats_auth import observer_permissions as observer_perms
from coopnet.deploy.nats_config import (
    HUB_NAMES,
    TlsFiles,
    cluster_configs,
    hub_config,
    leaf_config,
    new_route_secret,
)
from coopnet.deploy.quotas import Quotas, bus_limits
from coopnet.deploy.tls import (
    TlsError,
    check_operator_files,
    is_loopback,
    issue_server_cert,
    write_federation_tls,
    write_private,
)
from coopnet.node.cli import init_node
from coopnet.node.engine.config import (
    ConfigError,
    NodeConfig,
    read_config,
    read_identity,
    write_config,
)
from coopnet.node.engine.private_files import private_dir
from coopnet.node.engine.tls import client_context
from coopnet.protocol import Identity
from coopnet.protocol.charter import (
    Charter,
    CharterError,
    Currency,
    Founder,
    Policies,
    dump_charter,
    parse_charter,
)
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
    # Each hub's own address when they differ (hubs on several machines); empty: `host`.
    hosts: list[str] = msgspec.field(default_factory=list)
    # TLS on client, leafnode and route links (OPERATIONS.md §11). Paths are relative to the
    # federation dir unless absolute: the CA clients trust, and per hub its cert and key.
    tls: bool = False
    tls_ca: str = ""
    tls_cert: list[str] = msgspec.field(default_factory=list)
    tls_key: list[str] = msgspec.field(default_factory=list)
    tls_names: list[str] = msgspec.field(default_factory=list)  # extra names in hub certs
    # What each member may put on the bus, and the bus in all (OPERATIONS.md §12).
    quotas: Quotas = msgspec.field(default_factory=Quotas)

    def host_of(self, hub: int) -> str:
        """The address hub number `hub` (from 0) listens on and clients reach it by."""
        return self.hosts[hub] if self.hosts else self.host

    @property
    def urls(self) -> str:
        scheme = "tls" if self.tls else "nats"
        return ",".join(
            f"{scheme}://{self.host_of(i)}:{p}" for i, p in enumerate(self.ports.client)
        )

    @property
    def leaf_urls(self) -> list[str]:
        scheme = "tls" if self.tls else "nats-leaf"
        return [f"{scheme}://{self.host_of(i)}:{p}" for i, p in enumerate(self.ports.leaf)]

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


def neighborhoods(root: Path) -> list[str]:
    """The slugs of the neighborhoods in `root` (each folder with a node.toml), sorted."""
    folder = root / "neighborhoods"
    return sorted(p.name for p in folder.iterdir() if (p / "node.toml").exists())


def read_federation(root: Path) -> FederationConfig:
    path = root / "federation.toml"
    try:
        return msgspec.convert(tomllib.loads(path.read_text()), FederationConfig)
    except FileNotFoundError:
        raise ConfigError(
            f"{root} holds no federation ({path.name} not found)",
            f"make one with `coopnet federation init {root} --name NAME --neighborhoods "
            "oakley,elmwood`, or give the directory `federation init` made",
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
        f"next_leaf_port = {config.next_leaf_port}\n"
        f"hosts = {_toml_strings(config.hosts)}\n"
        f"tls = {'true' if config.tls else 'false'}\n"
        f"tls_ca = {msgspec.json.encode(config.tls_ca).decode()}\n"
        f"tls_cert = {_toml_strings(config.tls_cert)}\n"
        f"tls_key = {_toml_strings(config.tls_key)}\n"
        f"tls_names = {_toml_strings(config.tls_names)}\n\n"
        f"[ports]\nclient = {p.client}\nhttp = {p.http}\nleaf = {p.leaf}\nroute = {p.route}\n"
        "\n[quotas]  # per member per period_s, the aggregate; bytes and seconds (OPERATIONS §12)\n"
        + "".join(f"{k} = {v}\n" for k, v in msgspec.structs.asdict(config.quotas).items())
    )


def _toml_strings(values: list[str]) -> str:
    return "[" + ", ".join(msgspec.json.encode(v).decode() for v in values) + "]"


def charter_of(root: Path) -> tuple[Charter, bytes]:
    try:
        return parse_charter((root / "charter.json").read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{root / 'charter.json'} not found") from None


# The lowest port `federation init` writes: below it, ports are the system's (root only).
MIN_PORT, MAX_PORT = 1024, 65_535


def check_base_port(base: int, hubs: int) -> None:
    """`--port` (the first client port) must leave every port init derives from it
    (`default_ports`: up to base+4000+hubs-1, the monitoring ports) within
    MIN_PORT..MAX_PORT; else a ConfigError naming the highest --port that fits."""
    top = base + 4000 + hubs - 1
    if base < MIN_PORT or top > MAX_PORT:
        raise ConfigError(
            f"--port {base} is refused: init derives ports up to --port+{top - base} "
            f"(monitoring), and every port must lie in {MIN_PORT}..{MAX_PORT}",
            f"give a --port from {MIN_PORT} to {MAX_PORT - 4000 - (hubs - 1)}, e.g. 4222",
        )


def _check_ports(ports: Ports, next_leaf_port: int) -> None:
    """Every port of `ports`, and the first leaf port, within MIN_PORT..MAX_PORT."""
    roles = {"client": ports.client, "monitoring": ports.http, "leafnode": ports.leaf,
             "route": ports.route, "first --leaf": [next_leaf_port]}  # fmt: skip
    for role, values in roles.items():
        for port in values:
            if not MIN_PORT <= port <= MAX_PORT:
                raise ConfigError(
                    f"the hub {role} port would be {port}: ports lie in {MIN_PORT}..{MAX_PORT}",
                    "give another --port, e.g. 4222",
                )


@dataclass(frozen=True)
class FederationPlan:
    """Everything `federation init` writes, made and checked before anything is written
    (`plan_federation`), so that a refused argument leaves the disk as it was."""

    charter_bytes: bytes
    net: bytes
    config: FederationConfig
    founders: list[Founder]
    idents: dict[str, Identity]
    admission: nacl.signing.SigningKey


def plan_federation(
    *,
    name: str,
    slugs: list[str],
    hubs: int = 1,
    base_port: int = 4222,
    policies: Policies | None = None,
    sync_always: bool = True,
    ports: Ports | None = None,
    hosts: list[str] | None = None,
    tls: bool | None = None,
    tls_files: TlsFiles | None = None,
    tls_names: list[str] | None = None,
    quotas: Quotas | None = None,
    currency: Currency | None = None,
) -> FederationPlan:
    """Check every argument of `init_federation` and make its keys, charter and config,
    writing nothing. Raises ConfigError naming what is refused."""
    if hubs not in (1, 3):
        raise ConfigError("--hubs is 1 (one server) or 3 (a cluster)")
    for slug in slugs:
        check_slug(slug)
    if len(set(slugs)) != len(slugs) or not slugs:
        raise ConfigError(
            f"--neighborhoods {','.join(slugs)!r}: give one or more distinct neighborhood slugs"
        )
    slots = (quotas or Quotas()).members_max
    if slots < len(slugs):
        raise ConfigError(
            f"--max-members {slots} leaves no room for {len(slugs)} founders' streams "
            "(OPERATIONS.md §12)"
        )
    idents = {slug: Identity.generate(slug) for slug in slugs}
    admission = nacl.signing.SigningKey.generate()
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
        admission_key=bytes(admission.verify_key).hex(),
        currency=currency,
    )
    try:
        charter_bytes = dump_charter(charter)
        _, net = parse_charter(charter_bytes)
    except CharterError as exc:
        raise ConfigError(f"the charter is refused: {exc} (PROTOCOL.md §16.1)") from None
    config = FederationConfig(
        name=name,
        hubs=hubs,
        ports=ports or default_ports(base_port, hubs),
        sync_always=sync_always,
        next_leaf_port=base_port + 100,
        quotas=_checked(quotas or Quotas()),
    )
    _check_ports(config.ports, config.next_leaf_port)
    config = with_tls(
        with_hosts(config, hosts or []), tls=tls, files=tls_files, names=tls_names or []
    )
    return FederationPlan(charter_bytes, net, config, charter.founders, idents, admission)


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
    hosts: list[str] | None = None,
    tls: bool | None = None,
    tls_files: TlsFiles | None = None,
    tls_names: list[str] | None = None,
    quotas: Quotas | None = None,
    currency: Currency | None = None,
) -> FederationConfig:
    """Write a whole federation: charter, NATS authority and hub configs, one node per
    founding neighborhood with its credentials, and the observer's credentials. Every
    argument is checked (`plan_federation`) before anything is written.

    `currency`: what the charter says amounts are counted in (PROTOCOL.md §16.1); None
    leaves the key out, which means DEFAULT_CURRENCY (credits, CRD, 2 minor units).
    `quotas`: what each member may put on the bus (default `Quotas()`, OPERATIONS.md §12),
    minted into the account's and users' JWT limits. `hosts`: one address for every hub,
    or one per hub (default 127.0.0.1). `tls`: None decides (on for a cluster or a hub off
    loopback, OPERATIONS.md §11); `tls_files`: the operator's own CA, certificate and key
    instead of a CA made here; `tls_names`: more names or addresses for the generated hub
    certificates. Raises ConfigError."""
    plan = plan_federation(
        name=name, slugs=slugs, hubs=hubs, base_port=base_port, policies=policies,
        sync_always=sync_always, ports=ports, hosts=hosts, tls=tls, tls_files=tls_files,
        tls_names=tls_names, quotas=quotas, currency=currency,
    )  # fmt: skip
    return await write_planned(root, plan)


async def write_planned(root: Path, plan: FederationPlan) -> FederationConfig:
    """Write the federation `plan_federation` made into `root` (ConfigError if `root`
    holds one already)."""
    config = plan.config
    authority = await anyio.to_thread.run_sync(_write_federation_files, root, plan)
    for founder in plan.founders:
        await _write_neighborhood(
            root, config, authority, plan.idents[founder.slug], founder.display_name, founder.area
        )
    await anyio.to_thread.run_sync(write_observer, root, config, authority, plan.net)
    return config


def _write_federation_files(root: Path, plan: FederationPlan) -> Authority:
    if (root / "charter.json").exists():
        raise ConfigError(f"{root} already holds a federation")
    config = plan.config
    root.mkdir(parents=True, exist_ok=True)
    save_admission_key(root, plan.admission)
    (root / "charter.json").write_bytes(plan.charter_bytes)
    (root / "charter.net").write_text(plan.net.hex() + "\n")
    write_federation(root, config)
    authority = Authority.generate()
    authority.limits = bus_limits(config.quotas, replicas=config.hubs)
    authority.save(root)
    authority.user_creds("admin", admin_permissions()).write(root / "nats" / "admin.creds")
    write_hub_configs(root, config, authority)
    return authority


def with_hosts(config: FederationConfig, hosts: list[str]) -> FederationConfig:
    """`config` with its hubs' addresses: none (keep `host`), one for all, or one per hub."""
    if not hosts:
        return config
    if len(hosts) == 1:
        return msgspec.structs.replace(config, host=hosts[0], hosts=[])
    if len(hosts) != config.hubs:
        raise ConfigError(f"--host: one address, or one per hub ({config.hubs})")
    return msgspec.structs.replace(config, host=hosts[0], hosts=list(hosts))


def with_tls(
    config: FederationConfig, *, tls: bool | None, files: TlsFiles | None, names: list[str]
) -> FederationConfig:
    """`config` with its TLS decided (OPERATIONS.md §11): on when asked, when the operator
    gives files, for a cluster (clusters exist to span machines) and for any hub off
    loopback; plain text only when every hub is on loopback and it was not asked for.
    Plain text off loopback is refused (ConfigError)."""
    hosts = [config.host_of(i) for i in range(config.hubs)]
    off_loopback = [h for h in hosts if not is_loopback(h)]
    if tls is False:
        if files is not None:
            raise ConfigError("--no-tls with TLS files: choose one")
        if off_loopback:
            raise ConfigError(
                f"--no-tls with hubs on {', '.join(off_loopback)}: credentials and events "
                "would cross the network in clear text; TLS is required off loopback"
            )
        return msgspec.structs.replace(config, tls=False, tls_ca="", tls_cert=[], tls_key=[])
    if tls is None and files is None and config.hubs == 1 and not off_loopback:
        return config  # one machine, loopback only: plain text (OPERATIONS.md §11)
    if files is not None:
        try:
            check_operator_files(Path(files.ca), Path(files.cert), Path(files.key))
        except TlsError as exc:
            raise ConfigError(f"TLS: {exc}") from None
        return msgspec.structs.replace(
            config, tls=True, tls_ca=str(Path(files.ca).resolve()),
            tls_cert=[str(Path(files.cert).resolve())] * config.hubs,
            tls_key=[str(Path(files.key).resolve())] * config.hubs, tls_names=[],
        )  # fmt: skip
    servers = [p.stem for p in config.hub_configs(Path())]
    config = msgspec.structs.replace(config, tls_names=list(names))
    for i, server in enumerate(servers):
        if not hub_cert_names(config, i):
            raise ConfigError(
                f"{server} listens on {config.host_of(i)} (every interface): name it for its "
                "certificate with --tls-name (the DNS name or address clients use)"
            )
    return msgspec.structs.replace(
        config, tls=True, tls_ca=GENERATED_CA,
        tls_cert=[f"{TLS_DIR}/{s}.pem" for s in servers],
        tls_key=[f"{TLS_DIR}/{s}.key" for s in servers],
    )  # fmt: skip


def hub_cert_names(config: FederationConfig, hub: int) -> list[str]:
    """What hub number `hub`'s generated certificate names: its address (unless it is
    0.0.0.0 or ::, every interface, which no client dials) and the extra `tls_names`."""
    host = config.host_of(hub)
    names = [] if host in ("0.0.0.0", "::") else [host]
    return names + [n for n in config.tls_names if n not in names]


TLS_DIR = "nats/tls"
GENERATED_CA = f"{TLS_DIR}/ca.pem"
CA_COPY = "nats-ca.pem"  # a node's, a leaf's and the observer's copy of the federation CA


def ensure_tls_files(root: Path, config: FederationConfig) -> list[TlsFiles]:
    """Each hub's TLS files (absolute paths), made if the federation generates its own and
    they are missing: the CA at first, then any hub certificate not issued yet (a move to a
    cluster issues hub-1..3 from the same CA, so clients keep trusting it). Files the
    operator gave are checked, never written. Raises ConfigError."""
    ca = (root / config.tls_ca).resolve()
    servers = [p.stem for p in config.hub_configs(root)]
    hubs = [(s, hub_cert_names(config, i)) for i, s in enumerate(servers)]
    try:
        if config.tls_ca != GENERATED_CA:
            for cert_path, key_path in zip(config.tls_cert, config.tls_key, strict=True):
                check_operator_files(ca, root / cert_path, root / key_path)
        elif not ca.exists():
            write_federation_tls(root / TLS_DIR, federation=config.name, hubs=hubs)
        else:
            ca_pem, ca_key = ca.read_bytes(), (root / TLS_DIR / "ca.key").read_bytes()
            paths = zip(hubs, config.tls_cert, config.tls_key, strict=True)
            for (server, names), cert_path, key_path in paths:
                if not (root / cert_path).exists():
                    pem, key = issue_server_cert(ca_pem, ca_key, common_name=server, names=names)
                    (root / cert_path).write_bytes(pem)
                    write_private(root / key_path, key)
    except (TlsError, OSError, ValueError) as exc:
        raise ConfigError(f"TLS: {exc}") from None
    return [
        TlsFiles(ca=ca, cert=(root / c).resolve(), key=(root / k).resolve())
        for c, k in zip(config.tls_cert, config.tls_key, strict=True)
    ]


def client_tls(root: Path, config: FederationConfig) -> ssl.SSLContext | None:
    """The TLS context the operator's tools connect to the hubs with (trusting only the
    federation CA), or None for a plain-text federation. Raises ConfigError."""
    return client_context(root / config.tls_ca) if config.tls else None


def copy_ca(root: Path, config: FederationConfig, folder: Path) -> str:
    """Put the federation CA beside a node's or observer's config; return its file name
    ("" for a plain-text federation)."""
    if not config.tls:
        return ""
    shutil.copyfile(root / config.tls_ca, folder / CA_COPY)
    return CA_COPY


def route_secret(root: Path) -> str:
    """The cluster's route password (nats/route.secret, 0600), made at first use."""
    path = root / "nats" / "route.secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        secret = new_route_secret()
        write_private(path, (secret + "\n").encode())
        return secret


def write_hub_configs(root: Path, config: FederationConfig, authority: Authority) -> list[Path]:
    """Write hub.conf (or hub-1..3.conf) from `config`: TLS files made first if needed; a
    cluster's configs hold its route secret, so they are written 0600."""
    nats = root / "nats"
    p = config.ports
    paths = config.hub_configs(root)
    tls = ensure_tls_files(root, config) if config.tls else None
    if config.hubs == 1:
        texts = [
            hub_config(
                authority, server_name="hub", port=p.client[0], http_port=p.http[0],
                leaf_port=p.leaf[0], store_dir=(nats / "js").resolve(),
                jwt_dir=(nats / "jwt").resolve(), sync_always=config.sync_always, host=config.host,
                tls=tls[0] if tls else None,
            )
        ]  # fmt: skip
    else:
        texts = cluster_configs(
            authority, ports=p.client, route_ports=p.route, http_ports=p.http, leaf_ports=p.leaf,
            store_dirs=[(nats / f"js-{i}").resolve() for i in range(1, 4)],
            jwt_dirs=[(nats / f"jwt-{i}").resolve() for i in range(1, 4)],
            sync_always=config.sync_always, host=config.host,
            hosts=[config.host_of(i) for i in range(len(HUB_NAMES))], tls=tls,
            route_secret=route_secret(root),
        )  # fmt: skip
    for path, text in zip(paths, texts, strict=True):
        if config.hubs == 1:
            path.write_text(text)
        else:
            write_private(path, text.encode())
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
    founder = ident.author in charter.founder_keys()  # the charter names its key: no ticket
    ticket = (
        None if founder else admission_ticket(root, charter, net, ident.author, ident.public_key)
    )
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
        ticket=ticket,
        settings={
            "charter": "charter.json",
            "nats_creds": "nats.creds",
            "credit_limit": policy.credit_limit,
            "escalate_critical_s": policy.escalate_critical_s,
            "escalate_high_s": policy.escalate_high_s,
            "escalate_normal_s": policy.escalate_normal_s,
            "apply_about": about,
            "apply_reason": reason,
            # A leaf's node talks plain text to its leaf on 127.0.0.1; the leaf's link is TLS.
            "nats_ca": "" if leaf_port else copy_ca(root, config, data),
        },
    )
    issue_node_creds(root, ident.author, authority)
    if leaf_port:
        write_leaf_config(root, config, data, leaf_port)
    return data


def write_leaf_config(root: Path, config: FederationConfig, data: Path, port: int) -> Path:
    """A leaf neighborhood's leaf.conf: linked to every hub's leafnode port with the
    neighborhood's creds, over TLS checked against its copy of the CA when the hubs speak it."""
    ca = copy_ca(root, config, data)
    text = leaf_config(
        slug=data.name,
        port=port,
        hub_leaf_urls=config.leaf_urls,
        creds_path=(data / "nats.creds").resolve(),
        hub_ca=(data / ca).resolve() if ca else None,
    )
    (data / "leaf.conf").write_text(text)
    return data / "leaf.conf"


def issue_node_creds(root: Path, slug: str, authority: Authority) -> str:
    """(Re)write a node's creds for the key it signs with now; return its NATS user key."""
    data = neighborhood_dir(root, slug)
    ident = read_identity(data, slug)
    creds = authority.user_creds(
        f"node-{slug}", node_permissions(slug), seed=ident.seed, limits=authority.limits.node
    )
    creds.write(data / "nats.creds")
    return creds.public_key


def write_observer(root: Path, config: FederationConfig, authority: Authority, net: bytes) -> Path:
    # 0700 from the start: `coopnet observe` keeps its store here and would tighten (and
    # warn about) a folder others may read.
    obs = private_dir(root / "observer", announce=False)
    shutil.copyfile(root / "charter.json", obs / "charter.json")
    authority.user_creds(
        "observer-observer", observer_perms("observer"), limits=authority.limits.observer
    ).write(obs / "nats.creds")
    (obs / "observer.toml").write_text(
        'name = "observer"\n'
        f'net = "{net.hex()}"\n'
        f'nats_url = "{config.urls}"\n'
        'nats_creds = "nats.creds"\n'
        'charter = "charter.json"\n'
        f'nats_ca = "{copy_ca(root, config, obs)}"\n'
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


def move_to_cluster(
    root: Path, *, base_port: int | None = None, tls: bool | None = None
) -> FederationConfig:
    """Rewrite the hub configs for a three-server cluster, from the same operator keys, and
    point every node (and the observer) at the three servers. The stream's replicas are
    raised by `federation up` (or the operator's admin user) once the cluster runs.

    The cluster gets TLS unless `tls` is False (`with_tls`): from the federation's CA if it
    has one (nodes keep trusting it), else a new one, copied to every node and the observer.
    Its routes always need the route secret."""
    config = read_federation(root)
    if config.hubs == 3:
        raise ConfigError(f"{root} already runs on a three-server cluster")
    base = config.ports.client[0] if base_port is None else base_port
    own = None
    if config.tls and config.tls_ca != GENERATED_CA:  # the operator's files: keep them
        own = TlsFiles(ca=config.tls_ca, cert=config.tls_cert[0], key=config.tls_key[0])
    hosts = config.hosts if len(config.hosts) == 3 else []  # one per hub, as §8 says to set
    config = msgspec.structs.replace(config, hubs=3, ports=default_ports(base, 3), hosts=hosts)
    config = with_tls(config, tls=tls, files=own, names=config.tls_names)
    authority = Authority.load(root)
    if authority.limits != BusLimits():  # three copies of every stream: three times the disk
        authority.limits = bus_limits(config.quotas, replicas=config.hubs)
        authority.save(root)
    write_hub_configs(root, config, authority)
    write_federation(root, config)
    (root / "nats" / "hub.conf").unlink(missing_ok=True)
    for data in sorted((root / "neighborhoods").iterdir()):
        if (data / "node.toml").exists() and not (data / "leaf.conf").exists():
            set_node_option(
                root, data.name, nats_url=config.urls, nats_ca=copy_ca(root, config, data)
            )
        elif (data / "leaf.conf").exists():
            write_leaf_config(root, config, data, read_leaf_port(data))
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


def _checked(quotas: Quotas) -> Quotas:
    try:
        return quotas.check()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def check_slug(slug: str) -> None:
    """A neighborhood's slug is its author name on the wire (PROTOCOL.md §2.1)."""
    if not AUTHOR_RE.fullmatch(slug):
        raise ConfigError(
            f"slug {slug!r} is not a valid author name: 2-32 characters, a lowercase letter "
            "then lowercase letters, digits or '-' (PROTOCOL.md §2.1), e.g. 'oakley' or 'a1'"
        )


def _title(slug: str) -> str:
    return slug.replace("-", " ").title()
