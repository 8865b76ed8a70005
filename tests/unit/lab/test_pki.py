"""The lab's PKI: a root, an intermediate, a leaf per site, verified as strict clients verify.

Issuing is pure (keys and certificates in memory); ``write_pki`` writes into a temporary
directory. Chains are checked with Python's own ``ssl`` verifier at the end of a handshake
over a socket pair: no network, no process."""

from __future__ import annotations

import datetime
import socket
import ssl
import stat
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from kiloscribe_lab.lab import pki
from kiloscribe_lab.lab.scenarios import SITES


def test_issue_makes_root_intermediate_and_a_leaf_per_site() -> None:
    now = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)
    issued = pki.issue(SITES, now=now)
    root, intermediate = issued.root, issued.intermediate
    assert set(issued.leaves) == set(SITES)
    assert root.issuer == root.subject
    assert intermediate.issuer == root.subject
    root_bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    mid_bc = intermediate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert root_bc.critical and root_bc.value.ca and root_bc.value.path_length == 1
    assert mid_bc.critical and mid_bc.value.ca and mid_bc.value.path_length == 0
    for site, (leaf, key) in issued.leaves.items():
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
        assert leaf.issuer == intermediate.subject
        assert site in leaf.subject.rfc4514_string()
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
        # strict verifiers want both key identifiers, chained
        aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ski = intermediate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert aki.key_identifier == ski.digest
        assert leaf.not_valid_before_utc == now - pki.BACKDATE
        assert leaf.not_valid_after_utc == now + pki.VALID_FOR
    serials = {c.serial_number for c, _ in issued.leaves.values()}
    assert len(serials) == len(SITES)


def test_two_issues_share_nothing() -> None:
    a, b = pki.issue(["lb"]), pki.issue(["lb"])
    assert a.root.public_key() != b.root.public_key()
    assert a.leaves["lb"][0].public_key() != b.leaves["lb"][0].public_key()


def test_write_pki_files_modes_and_the_clients_bundle(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "pki").mkdir()
    (lab / "pki" / "old-site.crt").write_text("stale")
    issued = pki.write_pki(lab, ["edge", "lb"], lab / "ca.pem")
    assert (lab / "ca.pem").read_bytes() == pki.pem(issued.root)  # clients trust the root alone
    assert pki.root_file(lab).read_bytes() == pki.pem(issued.root)
    assert sorted(p.name for p in (lab / "pki").iterdir()) == sorted(
        ["root.crt", "intermediate.crt"]
        + [f"{s}{suffix}" for s in ("edge", "lb") for suffix in (".crt", ".fullchain.crt", ".key")]
    )
    files = pki.site_files(lab, "lb")
    leaf = pki.pem(issued.leaves["lb"][0])
    assert files.leaf.read_bytes() == leaf
    assert files.fullchain.read_bytes() == leaf + pki.pem(issued.intermediate)
    assert files.served(incomplete_chain=True) == files.leaf
    assert files.served(incomplete_chain=False) == files.fullchain
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert stat.S_IMODE((lab / "pki").stat().st_mode) == 0o700


def handshake(tmp_path: Path, served: Path, key: Path, trust: list[Path]) -> str:
    """A TLS handshake over a socket pair: the server presents ``served``; the client trusts
    ``trust`` and checks the name 127.0.0.1. "ok" or the client's verification error."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(served, key)
    client_ctx = ssl.create_default_context()
    client_ctx.load_verify_locations(cadata="".join(p.read_text() for p in trust))
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(a, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(b, server_hostname="127.0.0.1"):
            return "ok"
    except ssl.SSLCertVerificationError as exc:
        return exc.verify_message
    finally:
        b.close()
        thread.join(5)


def test_full_chain_verifies_with_the_root_alone_and_a_leaf_alone_does_not(tmp_path: Path) -> None:
    pki.write_pki(tmp_path, ["lb"], tmp_path / "ca.pem")
    files = pki.site_files(tmp_path, "lb")
    root = tmp_path / "ca.pem"
    assert handshake(tmp_path, files.fullchain, files.key, [root]) == "ok"
    # What FACTS.md records for Python: "unable to get local issuer certificate" (verify code 20).
    assert handshake(tmp_path, files.leaf, files.key, [root]) == "unable to get local issuer certificate"
    # The lab's own health checks also trust the intermediate: a leaf-only site is still "up".
    assert handshake(tmp_path, files.leaf, files.key, [root, pki.intermediate_file(tmp_path)]) == "ok"
