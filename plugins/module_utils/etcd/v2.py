# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reader (and small writer) for the etcd v2 HTTP API (``/v2/keys``).

Calico 2.x keeps its v1 data model in etcd's v2 keyspace, which the v3 gRPC API cannot see.
This client speaks plain HTTP(S) through ``ansible.module_utils.urls`` (``Request``, the
machinery behind ``open_url``, with one TLS context built up front): TLS with a CA
and client certificate, basic auth, several endpoints tried in order. Errors are raised as
:class:`EtcdV2Error` with one line naming the endpoint and the cause.

Large trees are walked without holding the whole tree: directories down to ``split_depth``
are listed one level at a time and each directory at that depth is read recursively on its
own (a few in parallel, results yielded in key order).
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ansible.module_utils.urls import Request

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import (
    DEFAULT_TIMEOUT,
    EtcdError,
    check_timeout,
)
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.urls import ETCD_DEFAULT_PORT, parse_etcd_url

V2_CONNECTION_ARGSPEC = {
    "endpoints": {"type": "list", "elements": "str", "default": ["http://127.0.0.1:2379"]},
    "ca_cert": {"type": "path"},
    "client_cert": {"type": "path"},
    "client_key": {"type": "path", "no_log": False},
    "user": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
}

ERROR_KEY_NOT_FOUND = 100
ERROR_NODE_EXIST = 105


class EtcdV2Error(Exception):
    """An etcd v2 request failed; the message names the endpoint and the cause."""


class EtcdV2NotFound(EtcdV2Error):
    """The key does not exist."""


@dataclass(frozen=True)
class V2Node:
    """One leaf (non-directory) node of the v2 keyspace.

    ``ttl`` is the time the leaf has left: its own TTL, or that of a directory above it that
    expires first (v2 deletes a directory with everything in it); ``expires_with`` names that
    directory (None when the leaf's own TTL, or none, applies).
    """

    key: str
    value: str
    ttl: int | None = None
    expiration: str | None = None
    created_index: int = 0
    modified_index: int = 0
    expires_with: str | None = None


def _inherit(node: dict, inherited: tuple[str, int] | None) -> tuple[str, int] | None:
    """``inherited`` for the children of ``node``: the node itself if it is a directory expiring sooner."""
    ttl = node.get("ttl")
    if node.get("dir") and ttl and (inherited is None or int(ttl) < inherited[1]):
        return node["key"], int(ttl)
    return inherited


def _leaves(node: dict, inherited: tuple[str, int] | None = None) -> Iterator[V2Node]:
    """Yield the leaves of a v2 node dict in key order (directories dropped, their TTL passed down)."""
    if node.get("dir"):
        inner = _inherit(node, inherited)
        for child in sorted(node.get("nodes") or [], key=lambda n: n["key"]):
            yield from _leaves(child, inner)
        return
    yield _to_leaf(node, inherited)


def _to_leaf(node: dict, inherited: tuple[str, int] | None = None) -> V2Node:
    ttl, expires_with = node.get("ttl"), None
    if inherited is not None and (not ttl or inherited[1] <= int(ttl)):
        ttl, expires_with = inherited[1], inherited[0]
    return V2Node(
        key=node["key"],
        value=node.get("value", ""),
        ttl=ttl,
        expiration=node.get("expiration"),
        created_index=node.get("createdIndex", 0),
        modified_index=node.get("modifiedIndex", 0),
        expires_with=expires_with,
    )


def _depth(prefix: str, key: str) -> int:
    rest = key[len(prefix.rstrip("/")):].strip("/")
    return len(rest.split("/")) if rest else 0


class EtcdV2Client:
    """etcd v2 keys API over HTTP(S) with endpoint failover."""

    def __init__(
        self,
        endpoints: Iterable[str] | str,
        ca_cert: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        user: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if isinstance(endpoints, str):
            endpoints = [e for e in endpoints.split(",") if e]
        self.endpoints = [e.rstrip("/") for e in endpoints]
        if not self.endpoints:
            raise EtcdV2Error("endpoints: at least one etcd v2 endpoint URL is required")
        for ep in self.endpoints:
            try:
                parse_etcd_url(ep, default_port=ETCD_DEFAULT_PORT)
            except ValueError as exc:
                raise EtcdV2Error(f"endpoints: {exc}") from None
        if bool(client_cert) != bool(client_key):
            raise EtcdV2Error("client_cert and client_key must be given together")
        if password and not user:
            raise EtcdV2Error("password: given without user")
        self.ca_cert = ca_cert
        self.client_cert = client_cert
        self.client_key = client_key
        self.user = user
        self.password = password
        try:
            self.timeout = check_timeout(timeout)
        except EtcdError as exc:
            raise EtcdV2Error(str(exc)) from None
        self._current = 0
        self.last_index = 0
        self._ctx = self._ssl_context()
        self._http = self._session()

    def _session(self) -> Request:
        """The HTTP session; ansible-core 2.16's Request takes no ``context``: the same TLS files by path."""
        common = {"use_proxy": False, "use_netrc": False, "follow_redirects": "none", "url_username": self.user,
                  "url_password": self.password, "force_basic_auth": bool(self.user)}
        try:
            return Request(context=self._ctx, **common)
        except TypeError:
            return Request(ca_path=self.ca_cert, client_cert=self.client_cert, client_key=self.client_key, **common)

    def _ssl_context(self) -> ssl.SSLContext:
        """One TLS context for every request (building one per request costs ~25 ms)."""
        try:
            ctx = ssl.create_default_context(cafile=self.ca_cert) if self.ca_cert else ssl.create_default_context()
            if self.client_cert:
                ctx.load_cert_chain(self.client_cert, self.client_key)
        except (OSError, ssl.SSLError) as e:
            raise EtcdV2Error(f"TLS files (ca_cert={self.ca_cert}, client_cert={self.client_cert}, "
                              f"client_key={self.client_key}): {e}") from None
        return ctx

    @property
    def endpoint(self) -> str:
        """The endpoint currently in use."""
        return self.endpoints[self._current]

    # -- transport -------------------------------------------------------------------------

    def _request(self, method: str, path: str, params: dict | None = None, form: dict | None = None) -> dict:
        """Send one request, failing over to the next endpoint on connection errors."""
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        data = urllib.parse.urlencode(form) if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else None
        errors = []
        n = len(self.endpoints)
        for attempt in range(n):
            idx = (self._current + attempt) % n
            ep = self.endpoints[idx]
            try:
                resp = self._http.open(method, ep + path + query, data=data, headers=headers, timeout=self.timeout)
                body = resp.read()
                self._current = idx
                self.last_index = int(resp.headers.get("X-Etcd-Index") or 0)
                return json.loads(body) if body else {}
            except urllib.error.HTTPError as e:
                self._current = idx
                raise self._http_error(ep, path, e) from None
            except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
                errors.append(f"{ep}: {_cause(e)}")
                continue
        raise EtcdV2Error("etcd v2 unreachable: " + "; ".join(errors))

    def _http_error(self, ep: str, path: str, e: urllib.error.HTTPError) -> EtcdV2Error:
        try:
            body = json.loads(e.read() or b"{}")
        except ValueError:
            body = {}
        code = body.get("errorCode")
        msg = body.get("message") or e.reason
        if code == ERROR_KEY_NOT_FOUND:
            return EtcdV2NotFound(f"{ep}: key not found: {body.get('cause', path)}")
        if e.code == 401:
            return EtcdV2Error(f"{ep}: authentication failed (HTTP 401): check user/password")
        if e.code == 403:
            return EtcdV2Error(f"{ep}: permission denied for {path} (HTTP 403)")
        if e.code == 404 and not body:
            return EtcdV2Error(f"{ep}: v2 API not available (HTTP 404): is etcd started with --enable-v2=true?")
        return EtcdV2Error(f"{ep}: {msg} (HTTP {e.code}, errorCode {code}) for {path}")

    @staticmethod
    def _keys_path(key: str) -> str:
        return "/v2/keys" + urllib.parse.quote("/" + key.lstrip("/"))

    # -- reads -----------------------------------------------------------------------------

    def version(self) -> dict:
        """The server's ``/version`` document (etcdserver, etcdcluster)."""
        return self._request("GET", "/version")

    def index(self) -> int:
        """The v2 store's current index (X-Etcd-Index, read with quorum); any v2 write raises it."""
        self._request("GET", "/v2/keys/", {"quorum": "true"})
        return self.last_index

    def get_node(self, key: str, recursive: bool = False) -> dict | None:
        """The raw v2 node dict for ``key`` (directory or leaf), or None if absent."""
        params = {"recursive": "true", "sorted": "true"} if recursive else {"sorted": "true"}
        try:
            return self._request("GET", self._keys_path(key), params)["node"]
        except EtcdV2NotFound:
            return None

    def get(self, key: str) -> V2Node | None:
        """The leaf at ``key``; None if absent; an error if it is a directory."""
        node = self.get_node(key)
        if node is None:
            return None
        if node.get("dir"):
            raise EtcdV2Error(f"{self.endpoint}: {key} is a directory, not a value")
        return _to_leaf(node)

    def walk(self, prefix: str, split_depth: int = 3, workers: int = 4,
             inherited: tuple[str, int] | None = None) -> Iterator[V2Node]:
        """Yield every leaf under ``prefix`` in key order; directories are dropped.

        Directories shallower than ``split_depth`` (path segments below ``prefix``) are listed
        one level at a time; each directory at ``split_depth`` is read recursively in one
        request, ``workers`` of them in flight at once, so at most that many subtrees are held.
        A directory's TTL is passed down to its leaves (see V2Node); ``inherited`` is that of the
        directories above ``prefix`` (see ttl_above). Hidden nodes (names starting with ``_``)
        are never listed by the v2 API: only a walk whose ``prefix`` names one reads it.
        """
        root = self.get_node(prefix)
        if root is None:
            return
        if not root.get("dir"):
            yield _to_leaf(root, inherited)
            return
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            yield from self._walk_dir(prefix, root, split_depth, pool, workers, _inherit(root, inherited))

    def ttl_above(self, key: str) -> tuple[str, int] | None:
        """The directory above ``key`` that expires first: (its key, remaining TTL), or None."""
        inherited = None
        parts = key.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            node = self.get_node("/" + "/".join(parts[:depth]))
            if node is None:
                break
            inherited = _inherit(node, inherited)
        return inherited

    def _walk_dir(self, prefix, node, split_depth, pool, window, inherited) -> Iterator[V2Node]:
        children = sorted(node.get("nodes") or [], key=lambda n: n["key"])
        pending: list = []  # (future of a recursive read, TTL inherited from above), in key order

        def drain(limit: int) -> Iterator[V2Node]:
            while len(pending) > limit:
                future, above = pending.pop(0)
                sub = future.result()
                if sub is not None:
                    yield from _leaves(sub, above)

        for child in children:
            if not child.get("dir"):
                yield from drain(0)
                yield _to_leaf(child, inherited)
                continue
            if _depth(prefix, child["key"]) >= split_depth:
                pending.append((pool.submit(self.get_node, child["key"], True), inherited))
                yield from drain(window)
                continue
            yield from drain(0)
            listing = self.get_node(child["key"])
            if listing is not None:
                yield from self._walk_dir(prefix, listing, split_depth, pool, window, _inherit(listing, inherited))
        yield from drain(0)

    def read_prefix(self, prefix: str) -> dict[str, str]:
        """Every leaf under ``prefix`` as {key: value} (for small trees and tests)."""
        return {n.key: n.value for n in self.walk(prefix)}

    # -- writes ----------------------------------------------------------------------------

    def set(self, key: str, value: str, ttl: int | None = None, prev_exist: bool | None = None) -> dict:
        """Set ``key`` to ``value`` (optionally with a TTL in seconds)."""
        form: dict = {"value": value}
        if ttl:
            form["ttl"] = str(int(ttl))
        if prev_exist is not None:
            form["prevExist"] = "true" if prev_exist else "false"
        return self._request("PUT", self._keys_path(key), form=form)

    def mkdir(self, key: str, ttl: int | None = None) -> None:
        """Create an (empty) directory, optionally expiring after ``ttl`` seconds; no error if it exists."""
        form = {"dir": "true", **({"ttl": str(int(ttl))} if ttl else {})}
        try:
            self._request("PUT", self._keys_path(key), form=form)
        except EtcdV2Error as e:
            if "Not a file" not in str(e) and "already exists" not in str(e):
                raise

    def delete(self, key: str, recursive: bool = False) -> bool:
        """Delete ``key`` (a directory with ``recursive``); False if it did not exist."""
        params = {"recursive": "true"} if recursive else None
        try:
            self._request("DELETE", self._keys_path(key), params)
            return True
        except EtcdV2NotFound:
            return False

    def set_many(self, items: Iterable[tuple[str, str]], workers: int = 8) -> int:
        """Set many keys over ``workers`` persistent HTTP connections; returns the count.

        Used by the dataset generator and tests, where tens of thousands of keys must be
        written quickly; it uses the endpoint currently in use.
        """
        base = self.endpoint
        ep = urllib.parse.urlsplit(base)
        ctx = self._ctx if ep.scheme == "https" else None
        auth = None
        if self.user:
            token = base64.b64encode(f"{self.user}:{self.password or ''}".encode()).decode()
            auth = "Basic " + token

        local = threading.local()

        def conn() -> http.client.HTTPConnection:
            c = getattr(local, "conn", None)
            if c is None:
                if ctx is not None:
                    c = http.client.HTTPSConnection(ep.hostname, ep.port, timeout=self.timeout, context=ctx)
                else:
                    c = http.client.HTTPConnection(ep.hostname, ep.port, timeout=self.timeout)
                local.conn = c
            return c

        def put(item: tuple[str, str]) -> None:
            key, value = item
            body = urllib.parse.urlencode({"value": value})
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            if auth:
                headers["Authorization"] = auth
            for attempt in range(3):
                c = conn()
                try:
                    c.request("PUT", self._keys_path(key), body=body, headers=headers)
                    resp = c.getresponse()
                    data = resp.read()
                    if resp.status >= 300:
                        raise EtcdV2Error(f"{base}: PUT {key}: HTTP {resp.status} {data[:200]!r}")
                    return
                except (OSError, http.client.HTTPException) as e:
                    c.close()
                    local.conn = None
                    if attempt == 2:
                        raise EtcdV2Error(f"{base}: PUT {key}: {_cause(e)}") from None
                    time.sleep(0.05)

        count = 0
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for _done in pool.map(put, items, chunksize=64):
                count += 1
        return count


def _cause(e: BaseException) -> str:
    """A short human cause for a transport exception."""
    reason = getattr(e, "reason", None)
    if isinstance(reason, BaseException):
        e = reason
    if isinstance(e, ssl.SSLError):
        return f"TLS error: {e}"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(e, socket.gaierror):
        return f"name resolution failed: {e}"
    if isinstance(e, ValueError):
        return f"invalid response: {e}"
    text = str(reason if reason is not None and not isinstance(reason, BaseException) else e)
    return text or e.__class__.__name__


def client_from_params(params: dict) -> EtcdV2Client:
    """Build a client from a dict of V2_CONNECTION_ARGSPEC options."""
    return EtcdV2Client(
        endpoints=["http://127.0.0.1:2379"] if params.get("endpoints") is None else params["endpoints"],
        ca_cert=params.get("ca_cert"),
        client_cert=params.get("client_cert"),
        client_key=params.get("client_key"),
        user=params.get("user"),
        password=params.get("password"),
        timeout=params["timeout"] if params.get("timeout") is not None else DEFAULT_TIMEOUT,
    )
