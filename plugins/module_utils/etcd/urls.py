# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one parser of etcd URLs (client endpoints of v3 and v2, member peer URLs)."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

ETCD_DEFAULT_PORT = 2379  # etcd's registered client port, what etcdctl assumes for a URL without one


class EtcdURL(NamedTuple):
    scheme: str
    host: str
    port: int

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}"


def parse_etcd_url(url: str, *, bare_scheme: str | None = None, default_port: int | None = None) -> EtcdURL:
    """``scheme://host:port`` (http or https, no path/query/fragment) parsed, or ValueError saying why.

    ``bare_scheme``: the scheme of a URL given without one (``host:port``); None refuses it.
    ``default_port``: the port of a URL given without one; None refuses it.
    The message starts with the URL as given, so callers prefix only the option's name.
    """
    text = url.strip() if isinstance(url, str) else ""
    if bare_scheme and text and "://" not in text:
        text = f"{bare_scheme}://{text}"
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"{url}: scheme must be http or https")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment \
            or (port is None and default_port is None):
        raise ValueError(f"{url}: expected scheme://host:port")
    port = default_port if port is None else port
    if not 1 <= port <= 65535:
        raise ValueError(f"{url}: the port must be a number 1-65535")
    return EtcdURL(parts.scheme.lower(), parts.hostname, port)
