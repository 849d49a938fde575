"""Who may read the controller's /metrics in a cluster: what current operator scaffolds do.

HTTPS (a certificate from --metrics-cert-dir, else a self-signed one made at start) and each
request's bearer token checked with a TokenReview, then a SubjectAccessReview for GET on the path
(grant it with the `swell-metrics-reader` ClusterRole). A yes is cached for a minute per token;
a no is asked again next time, so a new grant counts at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ssl
import tempfile
import time
from pathlib import Path

from swell import errors
from swell.clusters.kubernetes import api

TTL_S = 60.0


class Guard:
    """Checks the Authorization header of a request for `path`: (HTTP status, why)."""

    def __init__(self, client: api.Api, ttl_s: float = TTL_S) -> None:
        self.api, self.ttl_s = client, ttl_s
        self._cache: dict[tuple[str, str], tuple[float, int, str]] = {}

    async def check(self, authorization: str, path: str) -> tuple[int, str]:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return 401, "a bearer token is required (Authorization: Bearer TOKEN)"
        key = (hashlib.sha256(token.strip().encode()).hexdigest(), path)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        try:
            user = await self.api.review_token(token.strip())
            if user is None:
                answer = (401, "the token does not authenticate")
            elif await self.api.may_get(user, path):
                answer = (200, "")
            else:
                who = user.get("username", "?")
                answer = (403, f"{who} may not get {path} (bind the swell-metrics-reader ClusterRole)")
        except errors.KubernetesError as exc:
            return 503, f"cannot check the token with the API server: {exc}"  # not cached
        if answer[0] == 200:
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[key] = (now + self.ttl_s, *answer)
        return answer


def tls_context(cert_dir: str | None) -> ssl.SSLContext:
    """A server TLS context from cert_dir/tls.crt and tls.key, else a self-signed certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_dir:
        crt, key = Path(cert_dir) / "tls.crt", Path(cert_dir) / "tls.key"
        if not crt.is_file() or not key.is_file():
            raise errors.ClusterError(f"--metrics-cert-dir {cert_dir}: expected tls.crt and tls.key there")
        ctx.load_cert_chain(str(crt), str(key))
        return ctx
    pem_cert, pem_key = self_signed()
    with tempfile.TemporaryDirectory() as tmp:  # load_cert_chain reads files; gone right after
        crt, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        crt.write_bytes(pem_cert)
        key.write_bytes(pem_key)
        ctx.load_cert_chain(str(crt), str(key))
    return ctx


def self_signed(host: str = "swell-controller-metrics") -> tuple[bytes, bytes]:
    """A one-year self-signed certificate and its key (PEM), made in memory."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        raise errors.ClusterError(
            "a self-signed /metrics certificate needs the `cryptography` package: "
            "pip install cryptography, or pass --metrics-cert-dir with tls.crt and tls.key"
        ) from None
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host), x509.DNSName("localhost")]), False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key
