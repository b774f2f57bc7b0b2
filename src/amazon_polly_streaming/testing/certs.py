"""A throwaway certificate authority for the emulator's TLS, and its contexts.

:func:`create_test_ca` writes three PEM files to a directory:

* ``ca.pem``: the self-signed CA certificate. This path is part of the
  emulator's public interface: a client trusts it (awscrt:
  ``TlsContextOptions.override_default_trust_store_from_path(ca_filepath=...)``,
  Python: ``ssl.create_default_context(cafile=...)``).
* ``cert.pem``: the server's certificate, the leaf alone. The CA is the
  trust anchor every client already holds, so the server need not send it
  (RFC 8446 4.4.2); ``ssl.SSLContext.load_cert_chain`` takes the leaf first
  and any intermediates after it, and there are none.
* ``key.pem``: the server's private key (PKCS #8, unencrypted), mode 0600.

The CA's own key is never written: it signs the leaf and is dropped. Keys are
EC P-256 (fast to make); the certificates carry the extensions strict
verifiers (Python 3.13's ``VERIFY_X509_STRICT``, OpenSSL, s2n) expect.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "DEFAULT_HOSTS",
    "TestCertificates",
    "client_ssl_context",
    "create_test_ca",
    "server_ssl_context",
]

DEFAULT_HOSTS: Final = ("127.0.0.1", "::1", "localhost")
"""The names the server certificate is valid for unless told otherwise."""

_BACKDATE: Final = dt.timedelta(hours=1)
"""How far in the past certificates start, for clients whose clock is behind."""

# RFC 9113 9.2.2: HTTP/2 over TLS 1.2 needs an ephemeral key exchange and an
# AEAD cipher. TLS 1.3 suites are configured apart and are all acceptable.
_TLS12_CIPHERS: Final = "ECDHE+AESGCM:ECDHE+CHACHA20"


@dataclass(frozen=True, slots=True)
class TestCertificates:
    """Paths of the PEM files :func:`create_test_ca` wrote."""

    __test__ = False  # not a pytest test class, whatever its name

    ca_path: Path
    """The CA certificate: what clients trust."""
    cert_path: Path
    """The server certificate (the leaf), for ``load_cert_chain``."""
    key_path: Path
    """The server's private key (mode 0600)."""
    hosts: tuple[str, ...]
    """The IP addresses and DNS names the server certificate is valid for."""


def create_test_ca(
    directory: Path,
    *,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    valid_days: int = 30,
) -> TestCertificates:
    """Create a CA and a server certificate for ``hosts`` in ``directory``.

    :param directory: where to write ``ca.pem``, ``cert.pem`` and ``key.pem``
        (created if missing; existing files of those names are replaced).
    :param hosts: IP addresses (v4 or v6) and DNS names to put in the server
        certificate's subjectAltName; the first is also its common name.
    :param valid_days: validity of both certificates, counted from now; they
        start an hour in the past to tolerate clock skew.
    :raises ValueError: if ``hosts`` is empty or ``valid_days`` is not positive.
    """
    if not hosts:
        msg = "hosts: give at least one IP address or DNS name"
        raise ValueError(msg)
    if valid_days <= 0:
        msg = f"valid_days must be positive, got {valid_days}"
        raise ValueError(msg)
    now = dt.datetime.now(dt.UTC)
    not_before = now - _BACKDATE
    not_after = now + dt.timedelta(days=valid_days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "amazon-polly-streaming"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Polly emulator test CA"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(
                        NameOID.ORGANIZATION_NAME, "amazon-polly-streaming"
                    ),
                    x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(_general_names(hosts)), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    directory.mkdir(parents=True, exist_ok=True)
    certs = TestCertificates(
        ca_path=directory / "ca.pem",
        cert_path=directory / "cert.pem",
        key_path=directory / "key.pem",
        hosts=tuple(hosts),
    )
    _write(certs.key_path, _private_pem(key), mode=0o600)
    _write(certs.cert_path, leaf.public_bytes(serialization.Encoding.PEM), mode=0o644)
    _write(certs.ca_path, ca_cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return certs


def _general_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            names.append(x509.DNSName(host))
        else:
            names.append(x509.IPAddress(address))
    return names


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode``, even if the file existed.

    The file is created with ``mode`` from the start, so a private key is
    never readable by others, not even for an instant.
    """
    with os.fdopen(
        os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb"
    ) as f:
        os.fchmod(f.fileno(), mode)  # an existing file keeps its old mode otherwise
        f.write(data)


def server_ssl_context(certs: TestCertificates) -> ssl.SSLContext:
    """A server context for the emulator: TLS 1.2+, ALPN ``h2``, the test cert.

    Follows RFC 9113 9.2 for HTTP/2 over TLS: no compression, no
    renegotiation, and for TLS 1.2 only ephemeral key exchange with AEAD
    ciphers.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.set_ciphers(_TLS12_CIPHERS)
    context.load_cert_chain(certs.cert_path, certs.key_path)
    context.set_alpn_protocols(["h2"])
    return context


def client_ssl_context(certs: TestCertificates) -> ssl.SSLContext:
    """A client context trusting only the test CA, offering ALPN ``h2``.

    For tests that talk to the emulator with Python's own TLS stack; it checks
    the server's certificate and host name as any client would.
    """
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(certs.ca_path)
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    return context
