"""A local CA and a server certificate for the instance endpoints (TLS like RDS's).

    python -m local_rds.certs DIR [--force]

writes, once (kept unless --force or a file is missing), DIR/ca.pem (the CA certificate: what a
client trusts, like RDS's CA bundle), DIR/ca.key, DIR/server.pem (signed by the CA, valid for
IP 127.0.0.1 and DNS localhost) and DIR/server.key. `localstack/up` runs it in the stack dir.
The same function also makes throwaway CAs for tests (`--ca-only`).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_ca(common_name: str = "tenantd local RDS CA"):
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
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


def make_server(ca_cert, ca_key, hosts=("127.0.0.1", "localhost")):
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _write(path: str, data: bytes, mode: int) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def ensure(directory: str, force: bool = False) -> bool:
    """Writes the CA and server files unless all exist; returns True when it wrote them."""
    names = ["ca.pem", "ca.key", "server.pem", "server.key"]
    paths = {n: os.path.join(directory, n) for n in names}
    if not force and all(os.path.isfile(p) for p in paths.values()):
        return False
    os.makedirs(directory, exist_ok=True)
    ca_cert, ca_key = make_ca()
    cert, key = make_server(ca_cert, ca_key)
    _write(paths["ca.key"], _pem_key(ca_key), 0o600)
    _write(paths["server.key"], _pem_key(key), 0o600)
    _write(paths["server.pem"], cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(paths["ca.pem"], ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return True


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "--ca-only":
        # A throwaway CA certificate (PEM) at argv[1], e.g. for a test that must fail to verify.
        cert, _ = make_ca("throwaway test CA")
        _write(argv[1], cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return 0
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    wrote = ensure(argv[0], force="--force" in argv[1:])
    print(("created" if wrote else "kept") + f" the local RDS CA and server certificate in {argv[0]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
