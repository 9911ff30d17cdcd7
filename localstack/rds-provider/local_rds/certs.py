"""Local CAs, one per RDS CA identifier, and the server certificates the endpoints present.

    python -m local_rds.certs DIR [--force]

writes, once (kept unless --force or a file is missing), for every CA identifier RDS offers
(rds-ca-rsa2048-g1, rds-ca-rsa4096-g1, rds-ca-ecc384-g1 and the expired rds-ca-2019):

    DIR/<ca-id>/ca.pem       the CA certificate: that CA's bundle, what a client trusts
    DIR/<ca-id>/ca.key
    DIR/<ca-id>/server.pem   signed by that CA, valid for IP 127.0.0.1 and DNS localhost
    DIR/<ca-id>/server.key
    DIR/global-bundle.pem    every CA certificate (like RDS's global bundle)
    DIR/ca.pem, ca.key, server.pem, server.key   copies of the default CA's (rds-ca-rsa2048-g1)

Keys and signatures are of each CA's kind (RSA 2048 / SHA-256, RSA 4096 / SHA-384, P-384 /
SHA-384). The CAs carry RDS's validity dates, so rds-ca-2019 (and its server certificate) has
been expired since 2024-08-22, as on RDS. `localstack/up` runs this in the stack dir.
`--ca-only PATH` writes a throwaway CA certificate for tests that must fail to verify.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import sys
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _utc(y: int, m: int, d: int) -> datetime.datetime:
    return datetime.datetime(y, m, d, tzinfo=datetime.timezone.utc)


@dataclass(frozen=True)
class CaSpec:
    identifier: str
    key: tuple[str, int]  # ("rsa", bits) or ("ec", bits of the curve)
    valid_from: datetime.datetime
    valid_till: datetime.datetime
    # The server certificate of an expired CA expires with it; others are valid SERVER_DAYS.
    expired: bool = False

    def hash(self) -> hashes.HashAlgorithm:
        return hashes.SHA256() if self.key in (("rsa", 2048),) else hashes.SHA384()


# RDS's CAs (DescribeCertificates), with their validity periods.
CAS = [
    CaSpec("rds-ca-rsa2048-g1", ("rsa", 2048), _utc(2021, 5, 25), _utc(2061, 5, 25)),
    CaSpec("rds-ca-rsa4096-g1", ("rsa", 4096), _utc(2021, 5, 25), _utc(2121, 5, 25)),
    CaSpec("rds-ca-ecc384-g1", ("ec", 384), _utc(2021, 5, 25), _utc(2121, 5, 25)),
    CaSpec("rds-ca-2019", ("rsa", 2048), _utc(2019, 8, 22), _utc(2024, 8, 22), expired=True),
]
DEFAULT_CA = "rds-ca-rsa2048-g1"
SERVER_DAYS = 825
FILES = ("ca.pem", "ca.key", "server.pem", "server.key")


def _key(kind: tuple[str, int]):
    if kind[0] == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=kind[1])
    return ec.generate_private_key(ec.SECP384R1() if kind[1] == 384 else ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _key_usage(ca: bool, rsa_key: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not ca and rsa_key,
        data_encipherment=False,
        key_agreement=not ca and not rsa_key,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(
    common_name: str = "tenantd local RDS CA",
    kind: tuple[str, int] = ("ec", 256),
    valid_from: datetime.datetime | None = None,
    valid_till: datetime.datetime | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
):
    key = _key(kind)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from or now - datetime.timedelta(days=1))
        .not_valid_after(valid_till or now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(True, kind[0] == "rsa"), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, algorithm or hashes.SHA256())
    )
    return cert, key


def make_server(ca_cert, ca_key, hosts=("127.0.0.1", "localhost"), spec: CaSpec | None = None):
    kind = spec.key if spec else ("ec", 256)
    key = _key(kind)
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    if spec is not None and spec.expired:
        not_before, not_after = spec.valid_from, spec.valid_till
    else:
        not_before, not_after = now - datetime.timedelta(days=1), now + datetime.timedelta(days=SERVER_DAYS)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(False, kind[0] == "rsa"), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, spec.hash() if spec else hashes.SHA256())
    )
    return cert, key


def _write(path: str, data: bytes, mode: int) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def expected_files(directory: str) -> list[str]:
    out = [os.path.join(directory, spec.identifier, name) for spec in CAS for name in FILES]
    out += [os.path.join(directory, n) for n in (*FILES, "global-bundle.pem")]
    return out


def ensure(directory: str, force: bool = False) -> bool:
    """Writes every CA's files unless all exist; returns True when it wrote them."""
    if not force and all(os.path.isfile(p) for p in expected_files(directory)):
        return False
    os.makedirs(directory, exist_ok=True)
    bundle = b""
    for spec in CAS:
        sub = os.path.join(directory, spec.identifier)
        os.makedirs(sub, exist_ok=True)
        ca_cert, ca_key = make_ca(
            f"tenantd local {spec.identifier}", spec.key, spec.valid_from, spec.valid_till, spec.hash()
        )
        cert, key = make_server(ca_cert, ca_key, spec=spec)
        ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
        _write(os.path.join(sub, "ca.key"), _pem_key(ca_key), 0o600)
        _write(os.path.join(sub, "server.key"), _pem_key(key), 0o600)
        _write(os.path.join(sub, "server.pem"), cert.public_bytes(serialization.Encoding.PEM), 0o644)
        _write(os.path.join(sub, "ca.pem"), ca_pem, 0o644)
        bundle += ca_pem
    for name in FILES:
        shutil.copyfile(os.path.join(directory, DEFAULT_CA, name), os.path.join(directory, name) + ".tmp")
        os.chmod(os.path.join(directory, name) + ".tmp", 0o600 if name.endswith(".key") else 0o644)
        os.replace(os.path.join(directory, name) + ".tmp", os.path.join(directory, name))
    _write(os.path.join(directory, "global-bundle.pem"), bundle, 0o644)
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
    print(
        ("created" if wrote else "kept") + f" the local RDS CAs and server certificates in {argv[0]}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
