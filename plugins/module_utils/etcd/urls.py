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
    """
    text = url.strip() if isinstance(url, str) else ""
    if bare_scheme and text and "://" not in text:
        text = f"{bare_scheme}://{text}"
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL" for an unclosed [
        raise ValueError(f"{url!r} must be http(s)://host:port ({exc})") from None
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r} must be http(s)://host:port (the port must be a number 1-65535)") from None
    scheme = parts.scheme.lower()
    why = _shape_fault(parts, scheme)
    if why:
        raise ValueError(f"{url!r} must be http(s)://host:port ({why})")
    if port is None:
        if default_port is None:
            raise ValueError(f"{url!r} must be http(s)://host:port (the port is missing)")
        port = default_port
    if not 1 <= port <= 65535:
        raise ValueError(f"{url!r} must be http(s)://host:port (the port must be a number 1-65535)")
    return EtcdURL(scheme, parts.hostname, port)


def _shape_fault(parts, scheme: str) -> str | None:
    """What keeps a split URL from being scheme://host[:port], or None."""
    if scheme not in ("http", "https"):
        return f"the scheme is {parts.scheme!r}" if parts.scheme else "no scheme"
    if not parts.hostname:
        return "the host is missing"
    if parts.path not in ("", "/"):
        return f"no path: {parts.path!r}"
    if parts.query or parts.fragment:
        return "no query or fragment"
    if parts.username is not None:
        return "no user in the URL: give user and password as options"
    return None
