"""RDS's CA certificates: DescribeCertificates, ModifyCertificates, the CA of each instance.

Every instance has a CACertificateIdentifier: the one CreateDBInstance names, else the account's
default for new launches (rds-ca-rsa2048-g1, or what ModifyCertificates set). An identifier RDS
does not know is `CertificateNotFound` (404). The endpoint of an instance presents the server
certificate of its CA (see certs.py for the files and relay.py for the TLS), and
DescribeDBInstances shows `CertificateDetails` (the CA and the server certificate's expiry).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl
import threading
from dataclasses import dataclass

from localstack.aws.api import CommonServiceException

from local_rds.certs import CAS, DEFAULT_CA


@dataclass
class CaFiles:
    identifier: str
    valid_from: datetime.datetime
    valid_till: datetime.datetime
    thumbprint: str
    server_valid_till: datetime.datetime
    bundle: str | None  # path of the CA certificate (the bundle a client trusts)
    server_cert: str | None
    server_key: str | None


def _not_found(identifier: str) -> CommonServiceException:
    return CommonServiceException("CertificateNotFound", f"Certificate {identifier} not found.", 404, True)


def _load(directory: str | None) -> dict[str, CaFiles]:
    """The CAs with their files when DIR holds them (localstack/up), else the catalogue only."""
    from cryptography import x509

    out: dict[str, CaFiles] = {}
    for spec in CAS:
        sub = os.path.join(directory, spec.identifier) if directory else None
        ca_path = os.path.join(sub, "ca.pem") if sub else None
        if ca_path and os.path.isfile(ca_path):
            with open(ca_path, "rb") as f:
                ca = x509.load_pem_x509_certificate(f.read())
            with open(os.path.join(sub, "server.pem"), "rb") as f:
                server = x509.load_pem_x509_certificate(f.read())
            out[spec.identifier] = CaFiles(
                spec.identifier,
                ca.not_valid_before_utc,
                ca.not_valid_after_utc,
                hashlib.sha1(ca.public_bytes(_der())).hexdigest(),
                server.not_valid_after_utc,
                ca_path,
                os.path.join(sub, "server.pem"),
                os.path.join(sub, "server.key"),
            )
        else:
            digest = hashlib.sha1(spec.identifier.encode()).hexdigest()
            out[spec.identifier] = CaFiles(
                spec.identifier, spec.valid_from, spec.valid_till, digest, spec.valid_till, None, None, None
            )
    return out


def _der():
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.DER


class Certificates:
    def __init__(self, directory: str | None, fallback: ssl.SSLContext | None):
        self.directory = directory
        self.cas = _load(directory)
        self.fallback = fallback  # one certificate for every CA (no per-CA files)
        self.contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self.overrides: dict[tuple[str, str], str] = {}  # (account, region) -> default for new launches

    # --- TLS for the relay ---

    def tls_context(self, identifier: str | None) -> ssl.SSLContext | None:
        files = self.cas.get(identifier or DEFAULT_CA)
        if files is None or not files.server_cert:
            return self.fallback
        with self._lock:
            ctx = self.contexts.get(files.identifier)
            if ctx is None:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                ctx.load_cert_chain(files.server_cert, files.server_key)
                self.contexts[files.identifier] = ctx
            return ctx

    # --- instances ---

    def default_for(self, account: str, region: str) -> str:
        return self.overrides.get((account, region), DEFAULT_CA)

    def check(self, identifier: str) -> str:
        """The identifier as RDS stores it (lowercase), or CertificateNotFound."""
        ident = (identifier or "").lower()
        if ident not in self.cas:
            raise _not_found(identifier)
        return ident

    def details(self, identifier: str) -> dict:
        files = self.cas.get(identifier)
        return {"CAIdentifier": identifier, "ValidTill": files.server_valid_till if files else None}

    # --- DescribeCertificates / ModifyCertificates ---

    def _shape(self, files: CaFiles, account: str, region: str) -> dict:
        out = {
            "CertificateIdentifier": files.identifier,
            "CertificateType": "CA",
            "Thumbprint": files.thumbprint,
            "ValidFrom": files.valid_from,
            "ValidTill": files.valid_till,
            "CertificateArn": f"arn:aws:rds:{region}::cert:{files.identifier}",
            "CustomerOverride": self.overrides.get((account, region)) == files.identifier,
        }
        if out["CustomerOverride"]:
            out["CustomerOverrideValidTill"] = files.valid_till
        return out

    def describe(self, account: str, region: str, request: dict) -> dict:
        wanted = request.get("CertificateIdentifier")
        items = [self._shape(f, account, region) for f in self.cas.values()]
        if wanted:
            items = [c for c in items if c["CertificateIdentifier"] == wanted.lower()]
            if not items:
                raise _not_found(wanted)
        from local_rds.paging import page

        out = page(items, request, "Certificates")
        out["DefaultCertificateForNewLaunches"] = self.default_for(account, region)
        return out

    def modify(self, account: str, region: str, request: dict) -> dict:
        if request.get("RemoveCustomerOverride"):
            current = self.overrides.pop((account, region), None)
            files = self.cas[current or DEFAULT_CA]
            return {"Certificate": self._shape(files, account, region)}
        wanted = request.get("CertificateIdentifier")
        if not wanted:
            raise CommonServiceException(
                "InvalidParameterCombination",
                "Specify either CertificateIdentifier or RemoveCustomerOverride.",
                400,
                True,
            )
        ident = self.check(wanted)
        self.overrides[(account, region)] = ident
        return {"Certificate": self._shape(self.cas[ident], account, region)}

    def view(self) -> dict:
        """For the control endpoint: where each CA's bundle and server certificate are."""
        return {
            "default": DEFAULT_CA,
            "global_bundle": os.path.join(self.directory, "global-bundle.pem") if self.directory else None,
            "certificates": [
                {
                    "identifier": f.identifier,
                    "bundle": f.bundle,
                    "server_certificate": f.server_cert,
                    "valid_till": f.valid_till.isoformat(),
                    "server_valid_till": f.server_valid_till.isoformat(),
                }
                for f in self.cas.values()
            ],
        }
