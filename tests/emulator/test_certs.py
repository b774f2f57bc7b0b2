"""The emulator's test CA: certificate contents, file modes and real handshakes.

Handshakes run on loopback against the generated certificates with three TLS
stacks: Python's ``ssl``, the ``openssl`` command (when installed) and awscrt
(s2n on Linux), the TLS stack of the real client.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import stat
import subprocess
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest
from awscrt.aio.http import AIOHttp2ClientConnection  # type: ignore[import-untyped]
from awscrt.http import HttpVersion  # type: ignore[import-untyped]
from awscrt.io import (  # type: ignore[import-untyped]
    ClientTlsContext,
    TlsConnectionOptions,
    TlsContextOptions,
)
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

from amazon_polly_streaming.testing.certs import (
    DEFAULT_HOSTS,
    TestCertificates,
    client_ssl_context,
    create_test_ca,
    server_ssl_context,
)

# An empty HTTP/2 SETTINGS frame: length 0, type 4, flags 0, stream 0.
EMPTY_SETTINGS = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6 = _ipv6_loopback()
needs_ipv6 = pytest.mark.skipif(not IPV6, reason="no IPv6 loopback on this machine")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    return create_test_ca(tmp_path_factory.mktemp("certs"))


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


# ---------------------------------------------------------------- contents


def test_files_and_modes(certs: TestCertificates) -> None:
    assert certs.ca_path.name == "ca.pem"
    assert certs.cert_path.name == "cert.pem"
    assert certs.key_path.name == "key.pem"
    assert certs.hosts == DEFAULT_HOSTS
    assert stat.S_IMODE(certs.key_path.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" not in certs.cert_path.read_bytes()
    assert b"PRIVATE KEY" not in certs.ca_path.read_bytes()
    # The server file holds the leaf alone; the CA is the client's anchor.
    assert certs.cert_path.read_bytes().count(b"BEGIN CERTIFICATE") == 1
    assert certs.ca_path.read_bytes().count(b"BEGIN CERTIFICATE") == 1


def test_key_mode_is_fixed_when_the_file_existed(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("old")
    key.chmod(0o644)
    certs = create_test_ca(tmp_path)
    assert stat.S_IMODE(certs.key_path.stat().st_mode) == 0o600
    assert certs.key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_ca_certificate(certs: TestCertificates) -> None:
    ca = load(certs.ca_path)
    assert ca.subject == ca.issuer
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)


def test_leaf_certificate(certs: TestCertificates) -> None:
    ca, leaf = load(certs.ca_path), load(certs.cert_path)
    assert leaf.issuer == ca.subject
    public_key = leaf.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert not constraints.value.ca
    assert leaf.extensions.get_extension_for_class(
        x509.KeyUsage
    ).value.digital_signature
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)


def test_validity_tolerates_clock_skew(tmp_path: Path) -> None:
    before = dt.datetime.now(dt.UTC)
    certs = create_test_ca(tmp_path, valid_days=3)
    for cert in (load(certs.ca_path), load(certs.cert_path)):
        assert cert.not_valid_before_utc <= before - dt.timedelta(minutes=30)
        assert cert.not_valid_after_utc >= before + dt.timedelta(days=3, seconds=-5)
        assert cert.not_valid_after_utc <= before + dt.timedelta(days=3, minutes=5)


@pytest.mark.parametrize(
    "subject",
    [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ],
    ids=str,
)
def test_chain_verifies(
    certs: TestCertificates, subject: x509.DNSName | x509.IPAddress
) -> None:
    """cryptography's RFC 5280 / CA/B Forum path validation accepts the chain."""
    store = verification.Store([load(certs.ca_path)])
    verifier = verification.PolicyBuilder().store(store).build_server_verifier(subject)
    chain = verifier.verify(load(certs.cert_path), [])
    assert [c.subject for c in chain] == [
        load(certs.cert_path).subject,
        load(certs.ca_path).subject,
    ]


def test_chain_rejects_other_names(certs: TestCertificates) -> None:
    store = verification.Store([load(certs.ca_path)])
    verifier = (
        verification.PolicyBuilder()
        .store(store)
        .build_server_verifier(x509.DNSName("polly.us-east-1.amazonaws.com"))
    )
    with pytest.raises(verification.VerificationError):
        verifier.verify(load(certs.cert_path), [])


def test_custom_hosts(tmp_path: Path) -> None:
    certs = create_test_ca(tmp_path, hosts=["emulator.test", "10.0.0.7"])
    leaf = load(certs.cert_path)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["emulator.test"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]
    assert certs.hosts == ("emulator.test", "10.0.0.7")


def test_each_call_makes_a_new_ca(tmp_path: Path) -> None:
    first = load(create_test_ca(tmp_path / "a").ca_path)
    second = load(create_test_ca(tmp_path / "b").ca_path)
    assert first.public_key() != second.public_key()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        create_test_ca(tmp_path, hosts=[])
    with pytest.raises(ValueError, match="positive"):
        create_test_ca(tmp_path, valid_days=0)


def test_server_context(certs: TestCertificates) -> None:
    context = server_ssl_context(certs)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.options & ssl.OP_NO_RENEGOTIATION
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12
    assert all(c["kea"] == "kx-ecdhe" and c["aead"] for c in tls12)


# -------------------------------------------------------------- handshakes


@contextlib.asynccontextmanager
async def tls_server(certs: TestCertificates, host: str) -> AsyncGenerator[int]:
    """A loopback TLS server that speaks just enough HTTP/2 to be connected to.

    It sends an empty SETTINGS frame and reads until the client closes.
    """

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            writer.write(EMPTY_SETTINGS)
            await writer.drain()
            while await reader.read(65536):
                pass
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host, 0, ssl=server_ssl_context(certs))
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def python_handshake(
    certs: TestCertificates, host: str, context: ssl.SSLContext
) -> tuple[str | None, str | None, bytes]:
    async with tls_server(certs, host) as port:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host), 5
        )
        try:
            tls = writer.get_extra_info("ssl_object")
            assert isinstance(tls, ssl.SSLObject)
            first = await asyncio.wait_for(reader.readexactly(len(EMPTY_SETTINGS)), 5)
            return tls.selected_alpn_protocol(), tls.version(), first
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", pytest.param("::1", marks=needs_ipv6)],
)
def test_python_client_negotiates_h2(certs: TestCertificates, host: str) -> None:
    alpn, version, first = asyncio.run(
        python_handshake(certs, host, client_ssl_context(certs))
    )
    assert alpn == "h2"
    assert version in {"TLSv1.2", "TLSv1.3"}
    assert first == EMPTY_SETTINGS


def test_python_client_negotiates_h2_over_tls12(certs: TestCertificates) -> None:
    context = client_ssl_context(certs)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    alpn, version, _ = asyncio.run(python_handshake(certs, "127.0.0.1", context))
    assert (alpn, version) == ("h2", "TLSv1.2")


def test_python_client_of_another_ca_fails(
    certs: TestCertificates, tmp_path: Path
) -> None:
    other = create_test_ca(tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(python_handshake(certs, "127.0.0.1", client_ssl_context(other)))


openssl = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(openssl is None, reason="no openssl command")


@needs_openssl
@pytest.mark.parametrize(
    "check",
    [
        ["-verify_ip", "127.0.0.1"],
        ["-verify_ip", "::1"],
        ["-verify_hostname", "localhost"],
    ],
    ids=lambda c: c[1],
)
def test_openssl_verify(certs: TestCertificates, check: list[str]) -> None:
    assert openssl is not None
    done = subprocess.run(
        [
            openssl,
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            *check,
            "-CAfile",
            str(certs.ca_path),
            str(certs.cert_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{certs.cert_path}: OK"


@needs_openssl
def test_openssl_verify_rejects_another_name(certs: TestCertificates) -> None:
    assert openssl is not None
    done = subprocess.run(
        [
            openssl,
            "verify",
            "-verify_hostname",
            "example.com",
            "-CAfile",
            str(certs.ca_path),
            str(certs.cert_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode != 0


def crt_tls_options(ca_path: Path, host: str) -> TlsConnectionOptions:
    """awscrt's TLS options as a client of the emulator sets them."""
    options = TlsContextOptions()
    options.override_default_trust_store_from_path(  # pyright: ignore[reportUnknownMemberType]
        ca_filepath=str(ca_path)
    )
    connection_options = TlsConnectionOptions(ClientTlsContext(options))
    connection_options.set_alpn_list(["h2"])  # pyright: ignore[reportUnknownMemberType]
    connection_options.set_server_name(host)  # pyright: ignore[reportUnknownMemberType]
    return connection_options


async def crt_connect(certs: TestCertificates, host: str, trust: Path) -> bool:
    """Connect awscrt's HTTP/2 client; True if it negotiated HTTP/2."""
    async with tls_server(certs, host) as port:
        connection = await asyncio.wait_for(
            AIOHttp2ClientConnection.new(
                host_name=host,
                port=port,
                tls_connection_options=crt_tls_options(trust, host),
            ),
            10,
        )
        try:
            return bool(connection.version == HttpVersion.Http2)
        finally:
            await connection.close()


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", pytest.param("::1", marks=needs_ipv6)],
)
def test_awscrt_trusts_the_ca(certs: TestCertificates, host: str) -> None:
    """awscrt verifies the peer by default, so this handshake checked the chain.

    (No negative awscrt test: s2n delays every failed handshake by 10-30 s of
    "blinding", too slow for this suite; Python's and OpenSSL's negatives
    above stand in for it.)
    """
    assert TlsContextOptions().verify_peer
    assert asyncio.run(crt_connect(certs, host, certs.ca_path))
