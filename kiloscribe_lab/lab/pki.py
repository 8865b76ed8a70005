"""The lab's own PKI: a root CA, an intermediate CA, and one leaf per site (SAN 127.0.0.1).

Issued afresh at every ``lab up`` into ``<lab>/pki/`` (EC P-256 keys: a whole chain for eight
sites takes milliseconds), so two labs never vouch for each other's sites. Clients trust the
root alone (``<lab>/ca.pem``); each site serves its leaf and the intermediate, as a correctly
configured production server does, or its leaf alone when the scenario says so
(``Scenario.tls.incomplete_chain``): then Python, curl and Node fail with "unable to get local
issuer certificate" / ``UNABLE_TO_VERIFY_LEAF_SIGNATURE`` while browsers, which fetch or cache
intermediates, cope.

The certificates are what strict verifiers (Python 3.13's ``VERIFY_X509_STRICT``, Go, Node)
accept: CA certificates with critical basic constraints and key usage, every certificate with
subject and authority key identifiers, the leaf with ``serverAuth`` and its IP address in the
SAN. No CA key is written: nothing signs after ``lab up``. ``cryptography`` is imported when a
PKI is issued, not with this module: the CLI's other commands (``probe`` has a deadline that
counts its start-up) never pay for it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kiloscribe_lab.lab.ports import LOOPBACK

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

FOLDER = "pki"
ROOT_FILE = "root.crt"
INTERMEDIATE_FILE = "intermediate.crt"
ORGANISATION = "kiloscribe-lab"
# Long enough for a lab left running over a holiday; short enough that a stray copy of a lab's
# root stops being worth anything soon. The clock may be a little behind: start an hour back.
VALID_FOR = datetime.timedelta(days=30)
BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class SiteFiles:
    """Where one site's certificate files are (paths only: computing them writes nothing)."""

    leaf: Path  # the leaf certificate alone: an incomplete chain
    fullchain: Path  # leaf + intermediate: what a correct server sends
    key: Path  # its private key (0600)

    def served(self, incomplete_chain: bool) -> Path:
        """The file a server is configured with."""
        return self.leaf if incomplete_chain else self.fullchain


def folder(lab_dir: Path) -> Path:
    return lab_dir / FOLDER


def site_files(lab_dir: Path, site: str) -> SiteFiles:
    base = folder(lab_dir)
    return SiteFiles(
        leaf=base / f"{site}.crt", fullchain=base / f"{site}.fullchain.crt", key=base / f"{site}.key"
    )


def intermediate_file(lab_dir: Path) -> Path:
    return folder(lab_dir) / INTERMEDIATE_FILE


def root_file(lab_dir: Path) -> Path:
    return folder(lab_dir) / ROOT_FILE


# --- issuing (pure: keys and certificates in memory) -------------------------------------------


def _name(common_name: str) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key() -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _ca_usage() -> x509.KeyUsage:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_usage() -> x509.KeyUsage:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
    *,
    ca_path_length: int | None,
    leaf: bool,
) -> x509.Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    if leaf:
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_leaf_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False
            )
        )
    else:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=ca_path_length), critical=True
        ).add_extension(_ca_usage(), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True, slots=True)
class Issued:
    root: x509.Certificate
    intermediate: x509.Certificate
    leaves: dict[str, tuple[x509.Certificate, ec.EllipticCurvePrivateKey]]


def issue(sites: Iterable[str], now: datetime.datetime | None = None) -> Issued:
    """A fresh root, an intermediate it signs, and a leaf per site that the intermediate signs."""
    now = now or datetime.datetime.now(datetime.UTC)
    root_key, intermediate_key = _key(), _key()
    root_name = _name(f"{ORGANISATION} root CA")
    intermediate_name = _name(f"{ORGANISATION} intermediate CA")
    root = _certificate(root_name, root_key, root_name, root_key, now, ca_path_length=1, leaf=False)
    intermediate = _certificate(
        intermediate_name, intermediate_key, root_name, root_key, now, ca_path_length=0, leaf=False
    )
    leaves = {}
    for site in sites:
        key = _key()
        cert = _certificate(
            _name(f"{ORGANISATION} {site}"), key, intermediate_name, intermediate_key, now,
            ca_path_length=None, leaf=True,
        )  # fmt: skip
        leaves[site] = (cert, key)
    return Issued(root, intermediate, leaves)


def pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# --- writing --------------------------------------------------------------------------------------


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Atomically, with ``mode`` from the start (a key is never readable by others, even briefly)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    tmp.replace(path)


def write_pki(lab_dir: Path, sites: Iterable[str], ca_bundle: Path) -> Issued:
    """Issue the lab's PKI into ``<lab>/pki/`` and its root into ``ca_bundle`` (what clients trust)."""
    issued = issue(sites)
    base = folder(lab_dir)
    base.mkdir(mode=0o700, exist_ok=True)
    base.chmod(0o700)
    for stale in base.iterdir():
        stale.unlink()  # a site of the previous scenario must not be served by mistake
    _write(root_file(lab_dir), pem(issued.root))
    _write(intermediate_file(lab_dir), pem(issued.intermediate))
    for site, (cert, key) in issued.leaves.items():
        files = site_files(lab_dir, site)
        _write(files.key, key_pem(key), 0o600)
        _write(files.leaf, pem(cert))
        _write(files.fullchain, pem(cert) + pem(issued.intermediate))
    _write(ca_bundle, pem(issued.root))
    return issued
