"""The federation's TLS material: a CA made at `federation init`, and one server certificate
per hub, issued by it (docs/OPERATIONS.md §11). X.509 is written by the `cryptography`
library; nothing here encodes a certificate by hand.

    DIR/nats/tls/ca.pem           the federation CA's certificate: every node, leaf and
                                  observer gets a copy (`nats-ca.pem`) and trusts only it
    DIR/nats/tls/ca.key           the CA's private key (0600): needed only to issue more
                                  certificates; keep it off the hubs if you can
    DIR/nats/tls/<hub>.pem|.key   a hub's certificate and key (0600), for its client port,
                                  its leafnode port and its cluster routes (both ends of a
                                  route present one, so it serves as server and as client)

Keys are ECDSA P-256. The CA is valid ten years, a hub's certificate two years (renew with
`issue_server_cert` from the same CA; nodes keep trusting it). An operator with a CA of
their own passes its files instead (`federation init --tls-ca/--tls-cert/--tls-key`).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 730
# The clock of a machine that checks a certificate may run a little behind the issuer's.
_BACKDATE = datetime.timedelta(minutes=5)


class TlsError(Exception):
    """TLS material that cannot be made or read: says which file and why."""


def is_loopback(host: str) -> bool:
    """Whether `host` (an IP address or a name) stays on this machine: 127.0.0.0/8, ::1,
    `localhost`. Anything else, including 0.0.0.0 (every interface), reaches a network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """A CA signs certificates (and CRLs); a hub signs its TLS handshakes."""
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(federation: str) -> tuple[bytes, bytes]:
    """A new self-signed CA for one federation: (certificate PEM, private key PEM).
    Basic constraints CA with path length 0: it signs the hubs' certificates, no other CA."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{federation} federation CA")])
    now = datetime.datetime.now(datetime.UTC) - _BACKDATE
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def issue_server_cert(
    ca_cert_pem: bytes, ca_key_pem: bytes, *, common_name: str, names: Sequence[str]
) -> tuple[bytes, bytes]:
    """A hub's certificate, signed by the CA: (certificate PEM, private key PEM).

    `names` are the host names and IP addresses clients and other hubs reach it by (the
    subject alternative names; at least one). Extended key usage is server and client auth:
    a cluster route is a TLS connection each way, so each hub also presents it as a client.
    Raises TlsError for no names or a CA that does not load."""
    if not names:
        raise TlsError("a server certificate needs at least one host name or address")
    try:
        ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
        ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise TlsError(f"the CA certificate or key does not load: {exc}") from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TlsError("the federation CA key is not an ECDSA key")
    key = _new_key()
    now = datetime.datetime.now(datetime.UTC) - _BACKDATE
    unique = list(dict.fromkeys(names))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in unique]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only (0600 from the moment it exists)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_federation_tls(
    folder: Path, *, federation: str, hubs: Sequence[tuple[str, Sequence[str]]]
) -> tuple[Path, list[tuple[Path, Path]]]:
    """Make the CA and one certificate per hub in `folder` (created; mode 0700).

    `hubs` is (server name, names it is reached by) per hub. Returns the CA certificate's
    path and (certificate, key) paths per hub, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ca_pem, ca_key = make_ca(federation)
    (folder / "ca.pem").write_bytes(ca_pem)
    write_private(folder / "ca.key", ca_key)
    issued = []
    for server, names in hubs:
        cert, key = issue_server_cert(ca_pem, ca_key, common_name=server, names=names)
        (folder / f"{server}.pem").write_bytes(cert)
        write_private(folder / f"{server}.key", key)
        issued.append((folder / f"{server}.pem", folder / f"{server}.key"))
    return folder / "ca.pem", issued


def check_operator_files(ca: Path, cert: Path, key: Path) -> None:
    """The operator's own CA, certificate and key (`init --tls-ca/--tls-cert/--tls-key`):
    each must load, the certificate must carry subject alternative names, and the key must
    be the owner's only. Raises TlsError saying which file and why."""
    try:
        x509.load_pem_x509_certificates(ca.read_bytes())
        leaf = x509.load_pem_x509_certificate(cert.read_bytes())
        serialization.load_pem_private_key(key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise TlsError(f"the TLS files do not load: {exc}") from None
    try:
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        raise TlsError(
            f"{cert} has no subject alternative names: clients cannot check it"
        ) from None
    mode = key.stat().st_mode & 0o777
    if mode & 0o077:
        raise TlsError(f"{key} is readable by others (mode {mode:o}); chmod 600 it")
