"""Throwaway TLS material made with ``cryptography`` (EC P-256 keys: fast to generate).

:func:`make_tls_certs` writes PEM files into a directory and returns their paths:

- ``ca_cert``/``ca_key``: the test CA.
- ``server_cert``/``server_key``: signed by the CA, SAN ``IP:127.0.0.1, DNS:localhost``.
- ``other_ca_cert``/``other_ca_key``: an unrelated CA (a client trusting only it must refuse the
  server).
- ``expired_cert``/``expired_key``: signed by the CA, right SAN, but expired yesterday.
- ``self_signed_cert``/``self_signed_key``: self-signed server cert with the right SAN.
- ``wrong_host_cert``/``wrong_host_key``: signed by the CA, valid, SAN ``DNS:wrong.invalid``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class TlsCerts:
    """Paths of PEM files (see module docstring)."""

    dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    other_ca_cert: Path
    other_ca_key: Path
    expired_cert: Path
    expired_key: Path
    self_signed_cert: Path
    self_signed_key: Path
    wrong_host_cert: Path
    wrong_host_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pantau tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _write(dir_: Path, stem: str, cert: x509.Certificate, key: _Key) -> tuple[Path, Path]:
    cert_path = dir_ / f"{stem}.crt"
    key_path = dir_ / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _ca(cn: str, now: dt.datetime) -> tuple[x509.Certificate, _Key]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    cn: str,
    sans: list[x509.GeneralName],
    *,
    issuer: tuple[x509.Certificate, _Key] | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> tuple[x509.Certificate, _Key]:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name = issuer[0].subject if issuer else _name(cn)
    signing_key = issuer[1] if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256()), key


def make_tls_certs(dir_: Path) -> TlsCerts:
    """Generate all certificates into ``dir_`` (created if missing)."""
    dir_.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    good_sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    ca = _ca("pantau test CA", now)
    other_ca = _ca("unrelated test CA", now)
    valid = {"not_before": now - dt.timedelta(days=1), "not_after": now + dt.timedelta(days=30)}
    server = _leaf("localhost", good_sans, issuer=ca, **valid)
    expired = _leaf(
        "localhost",
        good_sans,
        issuer=ca,
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )
    self_signed = _leaf("localhost", good_sans, issuer=None, **valid)
    wrong_host = _leaf("wrong.invalid", [x509.DNSName("wrong.invalid")], issuer=ca, **valid)

    ca_cert, ca_key = _write(dir_, "ca", *ca)
    other_ca_cert, other_ca_key = _write(dir_, "other-ca", *other_ca)
    server_cert, server_key = _write(dir_, "server", *server)
    expired_cert, expired_key = _write(dir_, "expired", *expired)
    self_signed_cert, self_signed_key = _write(dir_, "self-signed", *self_signed)
    wrong_host_cert, wrong_host_key = _write(dir_, "wrong-host", *wrong_host)
    return TlsCerts(
        dir=dir_,
        ca_cert=ca_cert,
        ca_key=ca_key,
        server_cert=server_cert,
        server_key=server_key,
        other_ca_cert=other_ca_cert,
        other_ca_key=other_ca_key,
        expired_cert=expired_cert,
        expired_key=expired_key,
        self_signed_cert=self_signed_cert,
        self_signed_key=self_signed_key,
        wrong_host_cert=wrong_host_cert,
        wrong_host_key=wrong_host_key,
    )
