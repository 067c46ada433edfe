"""A throwaway PKI for tests: a CA and leaf certificates, issued by the collection's own PKI code.

``TestPKI(dir).issue("etcd-server", server=True)`` is ``module_utils.pki.ensure_certificate`` with
test defaults (short lifetimes, SANs for 127.0.0.1/localhost), so the tests and the roles build
certificates one way.
"""

from __future__ import annotations

from pathlib import Path

from ansible_collections.kubescale.calico.plugins.module_utils.pki import ensure_certificate


class TestPKI:
    """Issues certificates signed by one CA into ``directory``."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path, ca_name: str = "kubescale-test-ca") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_cert = directory / f"{ca_name}.pem"
        self.ca_key = directory / f"{ca_name}-key.pem"
        ensure_certificate(str(self.ca_cert), str(self.ca_key), "ca", ca_name, days=2, renew_before_days=0)

    def issue(self, name: str, *, server: bool = False, client: bool = True,
              ips: tuple[str, ...] = ("127.0.0.1",), dns: tuple[str, ...] = ("localhost",)) -> tuple[Path, Path]:
        """Return (cert path, key path) for a new leaf certificate."""
        kind = "peer" if server and client else "server" if server else "client"
        sans = [f"IP:{ip}" for ip in ips] + [f"DNS:{d}" for d in dns] if server else []
        cert_path, key_path = self.directory / f"{name}.pem", self.directory / f"{name}-key.pem"
        ensure_certificate(str(cert_path), str(key_path), kind, name, sans=sans, ca_path=str(self.ca_cert),
                           ca_key_path=str(self.ca_key), days=1, renew_before_days=0)
        return cert_path, key_path
