# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one etcd v3 client layer of kubescale.calico.

Built on the gRPC stubs that the ``etcd3`` library (0.12) ships, called directly so that this
layer controls what the library does not: paged ranges (``limit`` + continue after the last key),
guarded transactions in batches of at most 128 operations, failover over several endpoints,
one-line errors that name the endpoint and the cause, leases, locks, members, auth and snapshots.

etcd3 0.12 was generated with an old protoc; protobuf >= 4 only loads it with the pure-Python
implementation, so that is selected here, before the first protobuf import, and users need not
set anything.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.tls import (
    TLSInputError,
    load_tls_files,
    speaks_tls,
)
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.urls import ETCD_DEFAULT_PORT, parse_etcd_url

if "google.protobuf" not in __import__("sys").modules:
    os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # gRPC's own stderr chatter; errors are raised as EtcdError

try:
    import grpc
    from etcd3.etcdrpc import auth_pb2
    from etcd3.etcdrpc import rpc_pb2 as rpc
    from etcd3.etcdrpc import rpc_pb2_grpc as rpc_grpc

    HAS_ETCD3 = True
    ETCD3_IMPORT_ERROR = None
except Exception:  # ImportError, or TypeError from protobuf when it was loaded with upb first
    HAS_ETCD3 = False
    ETCD3_IMPORT_ERROR = traceback.format_exc()

MAX_TXN_OPS = 128
DEFAULT_PAGE_SIZE = 1000
DEFAULT_TIMEOUT = 10.0  # seconds; the one default for every etcd call of the collection



class EtcdError(Exception):
    """A failed etcd call, as one line that names the endpoint and the cause."""


class KeyValue(NamedTuple):
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


class Op(NamedTuple):
    """One guarded write for :meth:`EtcdClient.apply`.

    ``expect_mod_revision``: None = unconditional, 0 = the key must not exist,
    n = the key's mod_revision must still be n (nothing changed it since it was read).
    """

    kind: str  # "put" | "delete"
    key: str
    value: bytes = b""
    expect_mod_revision: int | None = None
    lease: int = 0

    @classmethod
    def put(cls, key: str, value: bytes | str, expect_mod_revision: int | None = None, lease: int = 0) -> Op:
        return cls("put", key, _b(value), expect_mod_revision, lease)

    @classmethod
    def delete(cls, key: str, expect_mod_revision: int | None = None) -> Op:
        return cls("delete", key, b"", expect_mod_revision, 0)


def _b(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def prefix_end(prefix: bytes) -> bytes:
    """The range_end that selects every key starting with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return b"\0"
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def _kv(item) -> KeyValue:
    return KeyValue(item.key.decode("utf-8", "surrogateescape"), item.value, item.create_revision,
                    item.mod_revision, item.version, item.lease)


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """Return (scheme, host:port) of an endpoint URL; a bare host:port counts as http."""
    try:
        url = parse_etcd_url(endpoint, bare_scheme="http", default_port=ETCD_DEFAULT_PORT)
    except ValueError as exc:
        raise EtcdError(f"endpoints: {exc}") from None
    return url.scheme, url.netloc


_NOSPACE = ("the etcd database is full (NOSPACE alarm: --quota-backend-bytes reached; reads still work): "
            "compact old revisions (etcdctl compact REV), defragment each member (etcdctl defrag), "
            "disarm the alarm (etcdctl alarm disarm), or raise --quota-backend-bytes")


def _tls_cause(details: str, endpoint: str, timeout: float) -> str | None:
    """What a failed https:// set-up means, or None when it was not about TLS."""
    low = details.lower()
    if "tsi_data_corrupted" in low or "bad_certificate" in low or "certificate required" in low:
        return "TLS: the server refused the client (give client_cert and client_key signed by its CA)"
    if "peer name" in low and "not in peer certificate" in low:
        return "TLS handshake failed: the server certificate does not name this host (check its SANs)"
    if "certificate_verify_failed" in low or "unable to get local issuer" in low:
        return ("TLS handshake failed: the server certificate is not signed by ca_cert (or, without ca_cert, "
                "by a CA of the system trust store) "
                f"({details.rsplit(': ', 2)[-2] if details.count(': ') >= 2 else details})")
    if ("handshake" in low or "socket closed" in low) and _speaks_tls(endpoint, timeout) is False:
        return "TLS handshake failed: the server does not speak TLS (is it http://?)"
    if "ssl" in low or "handshake" in low or "certificate" in low or "tls" in low:
        return f"TLS handshake failed: {details.rsplit(': ', 2)[-2] if details.count(': ') >= 2 else details}"
    return None


def _speaks_tls(endpoint: str, timeout: float) -> bool | None:
    try:
        url = parse_etcd_url(endpoint, bare_scheme="http", default_port=ETCD_DEFAULT_PORT)
    except ValueError:
        return None
    return speaks_tls(url.host, url.port, min(timeout, 2.0))


def describe_rpc_error(exc: Exception, endpoint: str, timeout: float) -> str:
    """Turn a gRPC error into one line: endpoint + cause."""
    code = exc.code() if hasattr(exc, "code") else None
    details = (exc.details() if hasattr(exc, "details") else str(exc)) or ""
    low = details.lower()
    name = code.name if code is not None else "ERROR"
    tls_cause = _tls_cause(details, endpoint, timeout) if endpoint.lower().startswith("https://") else None
    if tls_cause:
        cause = tls_cause
    elif "socket closed" in low:
        cause = ("the server speaks TLS (is it https://?)" if _speaks_tls(endpoint, timeout)
                 else "connection closed by the server during set-up (does it expect https:// and TLS?)")
    elif "invalid user id or password" in low or "authentication failed" in low:
        cause = "authentication failed: invalid user or password"
    elif name == "PERMISSION_DENIED" or "permission denied" in low:
        cause = "permission denied (the user's roles do not cover this key)"
    elif "user name is empty" in low or "invalid auth token" in low:
        cause = "authentication required: auth is enabled, give user and password"
    elif "no leader" in low or "leader changed" in low:
        cause = "no leader (the cluster has lost quorum or is electing)"
    elif "database space exceeded" in low or "nospace" in low:
        cause = _NOSPACE
    elif name == "DEADLINE_EXCEEDED" or "context deadline exceeded" in low:
        cause = f"timed out after {timeout:g}s"
    elif "dns resolution failed" in low or "errors resolving" in low or "domain name not found" in low:
        cause = "cannot resolve the host name (no such host, or DNS unreachable)"
    elif name == "UNAVAILABLE":
        reachable = "refused" not in low and "connect" not in low
        cause = f"unavailable: {details}" if reachable else "connection refused or unreachable"
    elif name == "RESOURCE_EXHAUSTED" and "larger than max" in low:
        cause = f"response too large ({details})"
    else:
        cause = f"{name}: {details}"
    return f"etcd {endpoint}: {cause}"


_FAILOVER_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED")
# clientv3's WithRequireLeader: a member without a leader answers "no leader" at once instead of
# holding the request until the deadline. Not for Maintenance/Cluster: status must work without one.
_HAS_LEADER = (("hasleader", "true"),)
_LEADER_REQUIRED = ("KV", "Lease", "Auth")
_SERVICES = ("KV", "Lease", "Cluster", "Maintenance", "Auth")
# after the first healthy answer, how long an endpoint listed before it may still answer and be preferred
PREFER_LISTED_ORDER_FOR = 0.1


def check_timeout(timeout) -> float:
    """``timeout`` as seconds > 0, or EtcdError (0 does not mean "default", a negative one is no deadline)."""
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise EtcdError(f"timeout: must be a number of seconds greater than 0, got {timeout!r}")
    return value


class EtcdClient:
    """A connection to one etcd cluster over one or more endpoints.

    At connect, all endpoints are probed at once (a Maintenance.Status each, within one budget of
    ``timeout``) and the first healthy one is used, so a frozen or dead member costs no call its
    timeout; when the endpoint in use fails, the others are probed the same way.
    """

    def __init__(self, endpoints: list[str] | str, ca_cert: str | None = None, client_cert: str | None = None,
                 client_key: str | None = None, user: str | None = None, password: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        if not HAS_ETCD3:
            raise EtcdError("the Python library etcd3 (with grpcio and protobuf) is required: " +
                            (ETCD3_IMPORT_ERROR or "").strip().splitlines()[-1])
        if isinstance(endpoints, str):
            endpoints = [e.strip() for e in endpoints.split(",") if e.strip()]
        if not endpoints:
            raise EtcdError("endpoints: at least one etcd endpoint is required")
        if bool(client_cert) != bool(client_key):
            raise EtcdError("client_cert and client_key must be given together")
        if bool(user) != bool(password):
            raise EtcdError("user and password must be given together")
        self.timeout = check_timeout(timeout)
        self._targets = [split_endpoint(e) for e in endpoints]
        self.endpoints = [e if "://" in e else f"http://{e}" for e in endpoints]
        self._user, self._password = user, password
        try:
            self._tls = load_tls_files(ca_cert, client_cert, client_key)
        except TLSInputError as exc:
            raise EtcdError(str(exc)) from None
        self._index = 0
        self._channel = None
        self._stubs: dict = {}
        self._metadata: tuple = ()
        self._lock = threading.RLock()

    # -- connection --------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return self.endpoints[self._index]

    def _open_channel(self, index: int):
        scheme, target = self._targets[index]
        options = [("grpc.max_receive_message_length", 4 * 1024 * 1024)]
        if scheme == "https":
            return grpc.secure_channel(target, grpc.ssl_channel_credentials(**self._tls), options=options)
        return grpc.insecure_channel(target, options=options)

    def _use(self, index: int, channel, budget: float) -> None:
        """Make ``channel`` (to endpoint ``index``) the one in use and log in within ``budget`` seconds."""
        self.close()
        self._index, self._channel = index, channel
        self._stubs = {name: getattr(rpc_grpc, f"{name}Stub")(channel) for name in _SERVICES}
        self._metadata = ()
        if self._user:
            try:
                resp = self._stubs["Auth"].Authenticate(
                    rpc.AuthenticateRequest(name=self._user, password=self._password), timeout=budget,
                    metadata=_HAS_LEADER)
            except grpc.RpcError as exc:
                if "authentication is not enabled" in (exc.details() or ""):
                    return  # auth is off: etcd serves anonymous requests (clientv3 does the same)
                raise
            self._metadata = (("token", resp.token),)

    def _connect(self, index: int) -> None:
        """Connect to exactly endpoint ``index``."""
        self._use(index, self._open_channel(index), self.timeout)

    def _connect_healthy(self, skip: set[int], errors: list[str]) -> None:
        """Connect to the first healthy endpoint not in ``skip`` (probed at once); else EtcdError.

        One budget of ``timeout`` covers the probe and the login. ``errors`` holds earlier failures
        of this call; each probed endpoint's failure is added to it.
        """
        candidates = [i for i in range(len(self.endpoints)) if i not in skip]
        if len(candidates) == 1:
            self._connect(candidates[0])  # the call itself is the probe
            return
        if candidates:
            deadline = time.monotonic() + self.timeout
            channels = {i: self._open_channel(i) for i in candidates}
            chosen, failures = self._probe(channels, deadline)
            for i, channel in channels.items():
                if i != chosen:
                    channel.close()
            if chosen is not None:
                self._use(chosen, channels[chosen], max(deadline - time.monotonic(), 0.001))
                return
            errors.extend(failures)
        if len(errors) == 1:
            raise EtcdError(errors[0])
        raise EtcdError("no etcd endpoint answered: " + "; ".join(e.removeprefix("etcd ") for e in errors))

    def _probe(self, channels: dict, deadline: float) -> tuple[int | None, list[str]]:
        """Status of every channel at once; (the endpoint to use or None, each failed one's message).

        The first healthy answer wins, except that an endpoint listed earlier which answers healthy
        within PREFER_LISTED_ORDER_FOR seconds of it is preferred (operators list the near member first).
        """
        done = threading.Condition()
        verdicts: dict[int, str | None] = {}  # index -> None (healthy) or why not

        def finished(index: int, future) -> None:
            verdict = self._probe_verdict(index, future)
            with done:
                verdicts[index] = verdict
                done.notify_all()

        futures = {}
        for index, channel in channels.items():
            future = rpc_grpc.MaintenanceStub(channel).Status.future(
                rpc.StatusRequest(), timeout=max(deadline - time.monotonic(), 0.001))
            futures[index] = future
            future.add_done_callback(lambda f, i=index: finished(i, f))
        order = sorted(channels)
        first_healthy_at = None
        with done:
            while True:
                now = time.monotonic()
                healthy = [i for i in order if i in verdicts and verdicts[i] is None]
                if healthy and first_healthy_at is None:
                    first_healthy_at = now
                if healthy:
                    earlier_pending = any(i not in verdicts for i in order if i < healthy[0])
                    if not earlier_pending or now >= first_healthy_at + PREFER_LISTED_ORDER_FOR:
                        chosen = healthy[0]
                        break
                if len(verdicts) == len(order) and not healthy:
                    chosen = None
                    break
                if now >= deadline:
                    chosen = healthy[0] if healthy else None
                    break
                wake = deadline if first_healthy_at is None else min(deadline,
                                                                     first_healthy_at + PREFER_LISTED_ORDER_FOR)
                done.wait(max(wake - now, 0.001))
            failures = [verdicts.get(i) or f"etcd {self.endpoints[i]}: timed out after {self.timeout:g}s"
                        for i in order if i not in verdicts or verdicts[i] is not None]
        for future in futures.values():
            future.cancel()
        return chosen, failures

    def _probe_verdict(self, index: int, future) -> str | None:
        """None when the Status answer shows a usable member, else the one-line reason."""
        endpoint = self.endpoints[index]
        if future.cancelled():
            return f"etcd {endpoint}: timed out after {self.timeout:g}s"
        exc = future.exception()
        if exc is None:
            if future.result().leader == 0:
                return f"etcd {endpoint}: no leader (the cluster has lost quorum or is electing)"
            return None
        if hasattr(exc, "code") and exc.code().name in _FAILOVER_CODES:
            return describe_rpc_error(exc, endpoint, self.timeout)
        return None  # it answered (e.g. auth wants a token): usable; the real call will say what is wrong

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = None

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _metadata_for(self, service: str) -> tuple:
        return self._metadata + _HAS_LEADER if service in _LEADER_REQUIRED else self._metadata

    def _invoke(self, service: str, method: str, request, stream: bool):
        fn = getattr(self._stubs[service], method)
        if stream:
            return list(fn(request, timeout=self.timeout, metadata=self._metadata_for(service)))
        return fn(request, timeout=self.timeout, metadata=self._metadata_for(service))

    def _call(self, service: str, method: str, request, *, stream: bool = False):
        """Run one RPC; when the endpoint in use cannot be reached, probe the others and go on with a healthy one."""
        with self._lock:
            errors: list[str] = []
            failed: set[int] = set()
            logged_in_again = False
            while True:
                try:
                    if self._channel is None:
                        self._connect_healthy(failed, errors)
                    return self._invoke(service, method, request, stream)
                except grpc.RpcError as exc:
                    index = self._index  # the endpoint that failed (set before logging in to it)
                    details = exc.details() or ""
                    stale = "invalid auth token" in details or (
                        self._user and not self._metadata and "user name is empty" in details)
                    if stale and not logged_in_again:
                        # token expired, or auth was enabled after we connected without one:
                        # authenticate again on the same endpoint
                        logged_in_again = True
                        self._connect(index)
                        continue
                    message = describe_rpc_error(exc, self.endpoints[index], self.timeout)
                    if exc.code().name not in _FAILOVER_CODES:  # "no leader" is UNAVAILABLE: try another member
                        raise EtcdError(message) from None
                    errors.append(message)
                    failed.add(index)
                    self.close()

    # -- key-value -------------------------------------------------------------------------
    def get(self, key: str) -> KeyValue | None:
        resp = self._call("KV", "Range", rpc.RangeRequest(key=_b(key)))
        return _kv(resp.kvs[0]) if resp.kvs else None

    def get_many(self, keys: list[str]) -> dict[str, KeyValue]:
        """Read several exact keys in transactions of at most MAX_TXN_OPS reads."""
        found: dict[str, KeyValue] = {}
        for start in range(0, len(keys), MAX_TXN_OPS):
            ops = [rpc.RequestOp(request_range=rpc.RangeRequest(key=_b(k))) for k in keys[start:start + MAX_TXN_OPS]]
            resp = self._call("KV", "Txn", rpc.TxnRequest(success=ops))
            for item in resp.responses:
                for kv in item.response_range.kvs:
                    value = _kv(kv)
                    found[value.key] = value
        return found

    def range(self, prefix: str, page_size: int = DEFAULT_PAGE_SIZE, keys_only: bool = False,
              revision: int | None = None) -> Iterator[KeyValue]:
        """Every key under ``prefix``, read in pages of ``page_size`` at one revision."""
        start, end = _b(prefix), prefix_end(_b(prefix))
        rev = revision or 0
        while True:
            resp = self._call("KV", "Range", rpc.RangeRequest(
                key=start, range_end=end, limit=page_size, revision=rev, keys_only=keys_only,
                sort_order=rpc.RangeRequest.ASCEND, sort_target=rpc.RangeRequest.KEY))
            rev = rev or resp.header.revision
            for item in resp.kvs:
                yield _kv(item)
            if not resp.more or not resp.kvs:
                return
            start = resp.kvs[-1].key + b"\0"

    def get_prefix_unpaged(self, prefix: str) -> list[KeyValue]:
        """One Range for the whole prefix (what ``etcd3.get_prefix`` does); kept to show its limit."""
        resp = self._call("KV", "Range", rpc.RangeRequest(key=_b(prefix), range_end=prefix_end(_b(prefix))))
        return [_kv(item) for item in resp.kvs]

    def count(self, prefix: str) -> int:
        resp = self._call("KV", "Range", rpc.RangeRequest(key=_b(prefix), range_end=prefix_end(_b(prefix)),
                                                          count_only=True))
        return int(resp.count)

    def revision(self) -> int:
        resp = self._call("KV", "Range", rpc.RangeRequest(key=b"\0", limit=1, count_only=True))
        return int(resp.header.revision)

    def put(self, key: str, value: bytes | str, lease: int = 0) -> int:
        resp = self._call("KV", "Put", rpc.PutRequest(key=_b(key), value=_b(value), lease=lease))
        return int(resp.header.revision)

    def delete(self, key: str) -> bool:
        resp = self._call("KV", "DeleteRange", rpc.DeleteRangeRequest(key=_b(key)))
        return resp.deleted > 0

    def delete_prefix(self, prefix: str) -> int:
        resp = self._call("KV", "DeleteRange", rpc.DeleteRangeRequest(key=_b(prefix), range_end=prefix_end(_b(prefix))))
        return int(resp.deleted)

    @staticmethod
    def _compare(op: Op):
        if op.expect_mod_revision == 0:
            return rpc.Compare(result=rpc.Compare.EQUAL, target=rpc.Compare.VERSION, key=_b(op.key), version=0)
        return rpc.Compare(result=rpc.Compare.EQUAL, target=rpc.Compare.MOD, key=_b(op.key),
                           mod_revision=op.expect_mod_revision)

    @staticmethod
    def _request(op: Op):
        if op.kind == "put":
            return rpc.RequestOp(request_put=rpc.PutRequest(key=_b(op.key), value=op.value, lease=op.lease))
        return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=_b(op.key)))

    def txn(self, ops: list[Op]) -> tuple[bool, int]:
        """One transaction: every guard holds → every op applies; else nothing. (succeeded, revision)."""
        if len(ops) > MAX_TXN_OPS:
            raise EtcdError(f"a transaction may hold at most {MAX_TXN_OPS} operations, got {len(ops)}")
        request = rpc.TxnRequest(compare=[self._compare(op) for op in ops if op.expect_mod_revision is not None],
                                 success=[self._request(op) for op in ops])
        resp = self._call("KV", "Txn", request)
        return bool(resp.succeeded), int(resp.header.revision)

    def create_range(self, items: list[tuple[str, bytes]]) -> bool:
        """Create sorted keys in one transaction guarded by "no key exists in [first, last]".

        Stronger than one version==0 compare per key and half the protobuf work, for bulk
        creates into a part of the keyspace known to be empty. False: the guard lost, nothing written.
        """
        if not items:
            return True
        if len(items) > MAX_TXN_OPS:
            raise EtcdError(f"a transaction may hold at most {MAX_TXN_OPS} operations, got {len(items)}")
        guard = rpc.Compare(result=rpc.Compare.EQUAL, target=rpc.Compare.VERSION, key=_b(items[0][0]),
                            range_end=_b(items[-1][0]) + b"\0", version=0)
        puts = [rpc.RequestOp(request_put=rpc.PutRequest(key=_b(k), value=_b(v))) for k, v in items]
        return bool(self._call("KV", "Txn", rpc.TxnRequest(compare=[guard], success=puts)).succeeded)

    def apply(self, ops: list[Op], max_ops: int = MAX_TXN_OPS) -> list[Op]:
        """Apply ops in guarded transactions of at most ``max_ops``; return the ops of lost batches."""
        if not 1 <= max_ops <= MAX_TXN_OPS:
            raise EtcdError(f"max_ops must be 1..{MAX_TXN_OPS}")
        lost: list[Op] = []
        for start in range(0, len(ops), max_ops):
            batch = ops[start:start + max_ops]
            if not self.txn(batch)[0]:
                lost.extend(batch)
        return lost

    # -- leases and locks ---------------------------------------------------------------------
    def grant_lease(self, ttl: int) -> int:
        resp = self._call("Lease", "LeaseGrant", rpc.LeaseGrantRequest(TTL=int(ttl)))
        return int(resp.ID)

    def revoke_lease(self, lease_id: int) -> None:
        try:
            self._call("Lease", "LeaseRevoke", rpc.LeaseRevokeRequest(ID=lease_id))
        except EtcdError as exc:
            if "not found" not in str(exc):
                raise

    def keepalive(self, lease_id: int) -> int:
        """Refresh a lease once; return its TTL (0 when it has expired)."""
        responses = self._call("Lease", "LeaseKeepAlive", iter([rpc.LeaseKeepAliveRequest(ID=lease_id)]), stream=True)
        return int(responses[0].TTL) if responses else 0

    def lease_ttl(self, lease_id: int) -> int:
        resp = self._call("Lease", "LeaseTimeToLive", rpc.LeaseTimeToLiveRequest(ID=lease_id))
        return int(resp.TTL)

    @contextmanager
    def lock(self, name: str, ttl: int = 60, owner: str = "") -> Iterator[int]:
        """Hold the lock key ``name`` (non-blocking) while the block runs; raise if someone holds it.

        The key lives on a lease refreshed in the background, so a killed holder frees it after ``ttl``.
        """
        lease = self.grant_lease(ttl)
        holder = owner or f"pid {os.getpid()}"
        request = rpc.TxnRequest(
            compare=[rpc.Compare(result=rpc.Compare.EQUAL, target=rpc.Compare.CREATE, key=_b(name), create_revision=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=_b(name), value=_b(holder), lease=lease))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=_b(name)))])
        resp = self._call("KV", "Txn", request)
        if not resp.succeeded:
            self.revoke_lease(lease)
            kvs = resp.responses[0].response_range.kvs
            current = kvs[0].value.decode("utf-8", "replace") if kvs else "?"
            raise EtcdError(f"etcd {self.endpoint}: lock {name} is held by {current}; "
                            f"another run is in progress (it expires {ttl}s after its holder stops)")
        stop = threading.Event()
        refresher = threading.Thread(target=self._refresh_until, args=(lease, max(0.2, ttl / 3), stop), daemon=True)
        refresher.start()
        try:
            yield lease
        finally:
            stop.set()
            refresher.join(5)
            self.revoke_lease(lease)

    def _refresh_until(self, lease: int, every: float, stop: threading.Event) -> None:
        while not stop.wait(every):
            try:
                self.keepalive(lease)
            except EtcdError:
                pass  # the next attempt may reach another endpoint

    # -- cluster ----------------------------------------------------------------------------------
    def status(self, endpoint: str | None = None) -> dict:
        """Status of one endpoint (default: the one in use)."""
        if endpoint is None:
            resp = self._call("Maintenance", "Status", rpc.StatusRequest())
            endpoint = self.endpoint
        else:
            resp = self._on_endpoint(endpoint, "Maintenance", "Status", rpc.StatusRequest())
        return {"endpoint": endpoint, "version": resp.version, "db_size": int(resp.dbSize),
                "leader": int(resp.leader), "raft_index": int(resp.raftIndex), "raft_term": int(resp.raftTerm),
                "member_id": int(resp.header.member_id), "cluster_id": int(resp.header.cluster_id),
                "revision": int(resp.header.revision), "is_leader": resp.leader == resp.header.member_id}

    def for_endpoint(self, endpoint: str) -> EtcdClient:
        """A client on exactly ``endpoint`` (no failover) with this one's TLS and credentials."""
        other = EtcdClient([endpoint], timeout=self.timeout, user=self._user, password=self._password)
        other._tls = self._tls
        return other

    def _on_endpoint(self, endpoint: str, service: str, method: str, request):
        """One RPC against exactly ``endpoint`` (no failover), for per-member checks."""
        other = self.for_endpoint(endpoint)
        try:
            return other._call(service, method, request)
        finally:
            other.close()

    def members(self) -> list[dict]:
        resp = self._call("Cluster", "MemberList", rpc.MemberListRequest())
        return [{"id": int(m.ID), "name": m.name, "peer_urls": list(m.peerURLs), "client_urls": list(m.clientURLs)}
                for m in resp.members]

    def member_add(self, peer_urls: list[str]) -> dict:
        resp = self._call("Cluster", "MemberAdd", rpc.MemberAddRequest(peerURLs=list(peer_urls)))
        member = resp.member
        return {"id": int(member.ID), "name": member.name, "peer_urls": list(member.peerURLs),
                "members": [{"id": int(m.ID), "name": m.name, "peer_urls": list(m.peerURLs)} for m in resp.members]}

    def member_remove(self, member_id: int) -> None:
        self._call("Cluster", "MemberRemove", rpc.MemberRemoveRequest(ID=int(member_id)))

    def alarms(self) -> list[dict]:
        request = rpc.AlarmRequest(action=rpc.AlarmRequest.GET, memberID=0, alarm=rpc.NONE)
        resp = self._call("Maintenance", "Alarm", request)
        names = {rpc.NONE: "NONE", rpc.NOSPACE: "NOSPACE", rpc.CORRUPT: "CORRUPT"}
        return [{"member_id": int(a.memberID), "alarm": names.get(a.alarm, str(a.alarm))} for a in resp.alarms]

    def snapshot(self, path: str, timeout: float | None = None) -> dict:
        """Stream a snapshot of the member in use to ``path`` (mode 0600); return size and sha256.

        Chunks go to disk as they arrive (a multi-GiB database never sits in memory); the stream has
        its own deadline ``timeout`` (None: none, since a large database takes longer than one RPC's
        timeout); the payload is checked against the sha256 etcd appends to the stream, as
        ``etcdctl snapshot save`` does; the file appears at ``path`` only when complete.
        """
        with self._lock:
            status = self._call("Maintenance", "Status", rpc.StatusRequest())  # a live endpoint (failover)
            endpoint = self.endpoint
            partial = f"{path}.part"
            try:
                if os.path.lexists(partial):
                    os.unlink(partial)  # a stale partial may carry a wider mode; O_EXCL gets a fresh 0600 file
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except OSError as exc:
                raise EtcdError(f"snapshot {partial}: cannot write ({exc.strerror})") from None
            try:
                size, digest = self._stream_snapshot(fd, endpoint, timeout)
                os.replace(partial, path)
            except BaseException:
                if os.path.lexists(partial):
                    os.unlink(partial)
                raise
        return {"path": path, "size": size, "sha256": digest, "endpoint": endpoint,
                "member_id": int(status.header.member_id), "revision": int(status.header.revision)}

    def _stream_snapshot(self, fd: int, endpoint: str, timeout: float | None) -> tuple[int, str]:
        digest, payload = hashlib.sha256(), hashlib.sha256()
        tail, size = b"", 0
        with os.fdopen(fd, "wb") as handle:
            try:
                for chunk in self._stubs["Maintenance"].Snapshot(rpc.SnapshotRequest(), timeout=timeout,
                                                                 metadata=self._metadata):
                    blob = chunk.blob
                    handle.write(blob)
                    digest.update(blob)
                    size += len(blob)
                    data = tail + blob
                    payload.update(data[:-32])
                    tail = data[-32:]
            except grpc.RpcError as exc:
                raise EtcdError(describe_rpc_error(exc, endpoint, timeout or self.timeout)) from None
            handle.flush()
            os.fsync(handle.fileno())
        if size <= 32 or payload.digest() != tail:
            raise EtcdError(f"etcd {endpoint}: snapshot stream incomplete or corrupt "
                            f"(the sha256 etcd appends does not match the {size} bytes received)")
        return size, digest.hexdigest()

    # -- auth ---------------------------------------------------------------------------------------
    def authenticate(self, user: str, password: str) -> bool | None:
        """Whether ``password`` is ``user``'s password; None when auth is off (etcd cannot tell then)."""
        try:
            self._call("Auth", "Authenticate", rpc.AuthenticateRequest(name=user, password=password))
            return True
        except EtcdError as exc:
            if "authentication failed" in str(exc):
                return False
            if "authentication is not enabled" in str(exc):
                return None
            raise

    def user_list(self) -> list[str]:
        return sorted(self._call("Auth", "UserList", rpc.AuthUserListRequest()).users)

    def user_get(self, name: str) -> list[str] | None:
        """The user's roles, or None when there is no such user."""
        try:
            return sorted(self._call("Auth", "UserGet", rpc.AuthUserGetRequest(name=name)).roles)
        except EtcdError as exc:
            if "user name not found" in str(exc):
                return None
            raise

    def user_add(self, name: str, password: str) -> None:
        self._call("Auth", "UserAdd", rpc.AuthUserAddRequest(name=name, password=password))

    def user_delete(self, name: str) -> None:
        self._call("Auth", "UserDelete", rpc.AuthUserDeleteRequest(name=name))

    def user_change_password(self, name: str, password: str) -> None:
        self._call("Auth", "UserChangePassword", rpc.AuthUserChangePasswordRequest(name=name, password=password))

    def user_grant_role(self, user: str, role: str) -> None:
        self._call("Auth", "UserGrantRole", rpc.AuthUserGrantRoleRequest(user=user, role=role))

    def user_revoke_role(self, user: str, role: str) -> None:
        self._call("Auth", "UserRevokeRole", rpc.AuthUserRevokeRoleRequest(name=user, role=role))

    def role_list(self) -> list[str]:
        return sorted(self._call("Auth", "RoleList", rpc.AuthRoleListRequest()).roles)

    _PERMS = {"read": 0, "write": 1, "readwrite": 2}

    def role_get(self, name: str) -> list[dict] | None:
        """The role's permissions, or None when there is no such role."""
        try:
            resp = self._call("Auth", "RoleGet", rpc.AuthRoleGetRequest(role=name))
        except EtcdError as exc:
            if "role name not found" in str(exc):
                return None
            raise
        names = {v: k for k, v in self._PERMS.items()}
        return [{"key": p.key.decode(), "range_end": p.range_end.decode(), "permission": names[p.permType]}
                for p in resp.perm]

    def role_add(self, name: str) -> None:
        self._call("Auth", "RoleAdd", rpc.AuthRoleAddRequest(name=name))

    def role_delete(self, name: str) -> None:
        self._call("Auth", "RoleDelete", rpc.AuthRoleDeleteRequest(role=name))

    def role_grant_permission(self, role: str, key: str, range_end: str, permission: str) -> None:
        perm = auth_pb2.Permission(permType=self._PERMS[permission], key=_b(key), range_end=_b(range_end))
        self._call("Auth", "RoleGrantPermission", rpc.AuthRoleGrantPermissionRequest(name=role, perm=perm))

    def role_revoke_permission(self, role: str, key: str, range_end: str) -> None:
        self._call("Auth", "RoleRevokePermission",
                   rpc.AuthRoleRevokePermissionRequest(role=role, key=_b(key), range_end=_b(range_end)))

    def auth_enable(self) -> None:
        self._call("Auth", "AuthEnable", rpc.AuthEnableRequest())

    def auth_disable(self) -> None:
        self._call("Auth", "AuthDisable", rpc.AuthDisableRequest())

    def auth_status(self) -> bool:
        """Whether auth is enabled.

        etcd 3.4 has no AuthStatus RPC. A login attempt tells: etcd answers "authentication is not
        enabled" or rejects the (made-up) user. Unlike an anonymous request, this does not depend
        on who the client certificate names (with --client-cert-auth a CN=root certificate is root).
        """
        probe = f"kubescale-auth-probe-{os.getpid()}"
        return self.authenticate(probe, os.urandom(16).hex()) is not None


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
