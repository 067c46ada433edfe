# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Point Calico (calico-node) at an etcd through the Kubernetes API.

Three objects in the Calico namespace: the ``calico-config`` ConfigMap (``etcd_endpoints`` and the
paths of the client certificate files inside the pods), the ``calico-etcd-secrets`` Secret
(``etcd-ca``, ``etcd-cert``, ``etcd-key``) and the ``calico-node`` DaemonSet, restarted by changing
an annotation of its pod template so that the pods re-read both. The DaemonSet's template also
carries a hash of the desired configuration: a run that changed the ConfigMap and died before the
restart still restarts on the next run, and a run with nothing to do restarts nothing.

Objects are read and written as plain JSON through the ``kubernetes`` client's generated API (no
model classes): updates are ``PUT`` with the ``resourceVersion`` that was read (a concurrent writer
gives 409 and one re-read), the restart is a JSON merge patch.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ansible_collections.kubescale.calico.plugins.module_utils.calico import rollout

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - guarded in the module
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = _exc

    class ApiException(Exception):  # type: ignore[no-redef]
        status = 0


RESTARTED_AT = "kubescale.io/restartedAt"
CONFIG_HASH = "kubescale.io/calico-datastore-hash"
SECRET_KEYS = ("etcd-ca", "etcd-cert", "etcd-key")
MERGE_PATCH = "application/merge-patch+json"

K8S_CONNECTION_ARGSPEC: dict = dict(
    kubeconfig=dict(type="path"),
    context=dict(type="str"),
    host=dict(type="str"),
    api_key=dict(type="str", no_log=True),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"]),
    validate_certs=dict(type="bool", default=True),
    request_timeout=dict(type="float", default=30.0),
)


class K8sDatastoreError(Exception):
    """A Kubernetes API call failed or an input is unusable; the message says which and why."""


@dataclass
class Desired:
    """What Calico should be pointed at."""

    namespace: str
    configmap: str
    secret: str
    daemonset: str
    endpoints: list[str]
    mount_path: str
    secret_data: dict[str, bytes]  # etcd-ca/etcd-cert/etcd-key -> file contents

    def config_data(self) -> dict[str, str]:
        data = {"etcd_endpoints": ",".join(self.endpoints)}
        for key, name in (("etcd_ca", "etcd-ca"), ("etcd_cert", "etcd-cert"), ("etcd_key", "etcd-key")):
            data[key] = f"{self.mount_path.rstrip('/')}/{name}" if name in self.secret_data else ""
        return data

    def config_hash(self) -> str:
        blob = json.dumps({"config": self.config_data(),
                           "secret": {k: hashlib.sha256(v).hexdigest() for k, v in sorted(self.secret_data.items())}},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Outcome:
    changed: bool = False
    actions: list[str] = field(default_factory=list)
    diff: dict = field(default_factory=lambda: {"before": {}, "after": {}})
    objects: dict = field(default_factory=dict)
    rollout: dict = field(default_factory=dict)
    progress: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def validate_endpoints(endpoints: list[str]) -> list[str]:
    """etcd_endpoints: non-empty http(s) URLs without commas."""
    if not endpoints:
        raise K8sDatastoreError("etcd_endpoints: at least one URL is required")
    out = []
    for url in endpoints:
        url = str(url).strip()
        if not (url.startswith("https://") or url.startswith("http://")) or "," in url or " " in url:
            raise K8sDatastoreError(f"etcd_endpoints: {url!r} must be an http:// or https:// URL without commas")
        out.append(url)
    return out


def read_secret_files(paths: dict[str, str | None]) -> dict[str, bytes]:
    """Read the client files named by ``{secret key: path}``; missing paths are left out."""
    data: dict[str, bytes] = {}
    for key, path in paths.items():
        if not path:
            continue
        try:
            with open(path, "rb") as fh:
                data[key] = fh.read()
        except OSError as exc:
            raise K8sDatastoreError(f"{key.replace('-', '_')}: cannot read {path}: {exc.strerror}") from None
    if data and ("etcd-cert" in data) != ("etcd-key" in data):
        raise K8sDatastoreError("etcd_cert and etcd_key: give both or neither")
    return data


def api_client(params: dict):
    """An ApiClient from a kubeconfig (and context) or from host/api_key/ca_cert."""
    cfg = k8s_client.Configuration()
    if params.get("kubeconfig") or not params.get("host"):
        try:
            k8s_config.load_kube_config(config_file=params.get("kubeconfig"), context=params.get("context"),
                                        client_configuration=cfg)
        except Exception as exc:  # the loader raises several types
            raise K8sDatastoreError(f"kubeconfig: cannot load {params.get('kubeconfig') or '~/.kube/config'}: "
                                    f"{exc}") from None
    if params.get("host"):
        cfg.host = params["host"].rstrip("/")
    if params.get("api_key"):
        cfg.api_key = {"authorization": params["api_key"]}
        cfg.api_key_prefix = {"authorization": "Bearer"}
    if params.get("ca_cert"):
        cfg.ssl_ca_cert = params["ca_cert"]
    cfg.verify_ssl = bool(params.get("validate_certs", True))
    return k8s_client.ApiClient(cfg)


class KubeObjects:
    """GET/POST/PUT/PATCH of the three object kinds as plain dicts."""

    def __init__(self, api, timeout: float = 30.0):
        self.core = k8s_client.CoreV1Api(api)
        self.apps = k8s_client.AppsV1Api(api)
        self.host = api.configuration.host
        self.timeout = timeout

    def _call(self, what: str, fn: Callable, *args, **kwargs) -> dict | None:
        try:
            resp = fn(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            if exc.status == 404 and what.startswith("read"):
                return None
            raise K8sDatastoreError(f"{what}: Kubernetes API {self.host} answered {exc.status} "
                                    f"{exc.reason}: {_api_message(exc)}") from None
        except Exception as exc:  # urllib3 connection/TLS errors
            raise K8sDatastoreError(f"{what}: cannot reach the Kubernetes API {self.host}: {exc}") from None
        return json.loads(resp.data or b"{}")

    def get(self, kind: str, ns: str, name: str) -> dict | None:
        fn = {"ConfigMap": self.core.read_namespaced_config_map, "Secret": self.core.read_namespaced_secret,
              "DaemonSet": self.apps.read_namespaced_daemon_set}[kind]
        return self._call(f"read {kind} {ns}/{name}", fn, name, ns)

    def create(self, kind: str, ns: str, body: dict) -> dict:
        fn = {"ConfigMap": self.core.create_namespaced_config_map, "Secret": self.core.create_namespaced_secret}[kind]
        return self._call(f"create {kind} {ns}/{body['metadata']['name']}", fn, ns, body)

    def replace(self, kind: str, ns: str, body: dict) -> dict:
        fn = {"ConfigMap": self.core.replace_namespaced_config_map,
              "Secret": self.core.replace_namespaced_secret}[kind]
        name = body["metadata"]["name"]
        return self._call(f"update {kind} {ns}/{name}", fn, name, ns, body)

    def patch_daemonset(self, ns: str, name: str, patch: dict) -> dict:
        return self._call(f"patch DaemonSet {ns}/{name}", self.apps.patch_namespaced_daemon_set, name, ns, patch,
                          _content_type=MERGE_PATCH)


def _api_message(exc) -> str:
    try:
        return json.loads(exc.body).get("message", "") or str(exc.body)[:200]
    except (TypeError, ValueError, AttributeError):
        return str(getattr(exc, "body", ""))[:200]


def _fingerprint(value: bytes) -> str:
    return f"<{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:16]}>"


def _decode_secret(obj: dict | None) -> dict[str, bytes]:
    out = {}
    for key, value in ((obj or {}).get("data") or {}).items():
        try:
            out[key] = base64.b64decode(value)
        except (ValueError, TypeError):
            out[key] = b""
    return out


def _ensure(kube: KubeObjects, kind: str, ns: str, name: str, want: dict, check: bool,
            to_body: Callable[[dict], dict], current: Callable[[dict | None], dict]) -> tuple[bool, dict]:
    """Create or update one ConfigMap/Secret so its managed keys equal ``want``.

    Returns (changed, the managed keys' values before)."""
    for _attempt in range(2):
        obj = kube.get(kind, ns, name)
        have = current(obj)
        before = {k: have.get(k) for k in want}
        if before == want:
            return False, before
        if check:
            return True, before
        if obj is None:
            body = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": ns}}
            body.update(to_body(dict(want)))
            kube.create(kind, ns, body)
            return True, before
        body = dict(obj)
        body.update(to_body({**have, **want}))
        try:
            kube.replace(kind, ns, body)
            return True, before
        except K8sDatastoreError as exc:
            if " 409 " not in str(exc):
                raise
    raise K8sDatastoreError(f"update {kind} {ns}/{name}: changed by someone else twice while being updated")


@dataclass
class Rollout:
    """How calico-node is rolled: strategy to set (None keeps the DaemonSet's) and how long to wait."""

    restart: bool = True
    wait: bool = True
    max_unavailable: int | str | None = None
    batch_seconds: float = 60.0
    timeout: float | None = None  # None: derived from the pods left and the strategy
    sleep: float = 2.0
    every: float = 30.0
    timeout_fails: bool = True  # False: return the state (complete false) when the budget runs out


def _strategy_patch(ds: dict, want: Rollout, needs_restart: bool) -> dict:
    """The updateStrategy part of the DaemonSet patch ({} when it already matches).

    Refuses (before any write) a restart that an OnDelete strategy would never carry out."""
    kind, current = rollout.strategy_of(ds)
    if want.max_unavailable is None:
        if kind == "OnDelete" and needs_restart and want.restart:
            raise K8sDatastoreError(
                f"daemonset: DaemonSet {(ds.get('metadata') or {}).get('name')} has updateStrategy OnDelete, "
                "so a restart replaces no pod; set max_unavailable (e.g. 10%) to switch it to RollingUpdate")
        return {}
    try:
        same = rollout.parse_max_unavailable(current, "maxUnavailable") == want.max_unavailable
    except rollout.RolloutError:
        same = False
    if kind == "RollingUpdate" and same:
        return {}
    return {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": want.max_unavailable}}}


def apply(kube: KubeObjects, want: Desired, check: bool, roll: Rollout | None = None,
          now: Callable[[], str] | None = None) -> Outcome:
    """Bring ConfigMap, Secret and DaemonSet to ``want``; restart calico-node when the config differs."""
    roll = roll or Rollout()
    restart = roll.restart
    out = Outcome()
    ns = want.namespace
    ds = kube.get("DaemonSet", ns, want.daemonset)
    if ds is None and restart:
        raise K8sDatastoreError(f"daemonset: DaemonSet {ns}/{want.daemonset} not found (is Calico installed?)")
    strategy = {}
    if restart and ds is not None:
        annotations = ((ds.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}
        strategy = _strategy_patch(ds, roll, annotations.get(CONFIG_HASH) != want.config_hash())

    cm_want = want.config_data()
    changed, before_cm = _ensure(kube, "ConfigMap", ns, want.configmap, cm_want, check,
                                 to_body=lambda d: {"data": d},
                                 current=lambda o: dict((o or {}).get("data") or {}))
    out.objects["configmap"] = {"name": want.configmap, "changed": changed}
    if changed:
        out.changed = True
        out.actions.append(f"{'would set' if check else 'set'} {', '.join(sorted(cm_want))} in ConfigMap "
                           f"{ns}/{want.configmap}")
    out.diff["before"]["configmap"] = before_cm
    out.diff["after"]["configmap"] = cm_want

    if want.secret_data:
        changed_s, sec_before = _ensure(
            kube, "Secret", ns, want.secret, want.secret_data, check,
            to_body=lambda d: {"type": "Opaque", "data": {k: base64.b64encode(v).decode() for k, v in d.items()}},
            current=_decode_secret)
        out.objects["secret"] = {"name": want.secret, "changed": changed_s}
        out.diff["before"]["secret"] = {k: _fingerprint(v) if v is not None else None
                                        for k, v in sec_before.items()}
        out.diff["after"]["secret"] = {k: _fingerprint(v) for k, v in want.secret_data.items()}
        if changed_s:
            out.changed = True
            out.actions.append(f"{'would store' if check else 'stored'} {', '.join(sorted(want.secret_data))} "
                               f"in Secret {ns}/{want.secret}")

    if restart and ds is not None:
        digest = want.config_hash()
        annotations = ((ds.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}
        out.diff["before"]["daemonset"] = {CONFIG_HASH: annotations.get(CONFIG_HASH)}
        out.diff["after"]["daemonset"] = {CONFIG_HASH: digest}
        needs = annotations.get(CONFIG_HASH) != digest
        out.objects["daemonset"] = {"name": want.daemonset, "changed": needs or bool(strategy)}
        patch: dict = {"spec": dict(strategy)}
        if strategy:
            out.changed = True
            out.actions.append(f"{'would set' if check else 'set'} updateStrategy RollingUpdate maxUnavailable "
                               f"{roll.max_unavailable} on DaemonSet {ns}/{want.daemonset}")
        if needs:
            out.changed = True
            stamp = (now or _utc_now)()
            out.actions.append(f"{'would restart' if check else 'restarted'} DaemonSet {ns}/{want.daemonset} "
                               f"(rolling, {RESTARTED_AT}={stamp})")
            patch["spec"]["template"] = {"metadata": {"annotations": {RESTARTED_AT: stamp, CONFIG_HASH: digest}}}
        if patch["spec"] and not check:
            ds = kube.patch_daemonset(ns, want.daemonset, patch)  # one patch: strategy and restart together
        if not check:
            out.rollout, out.progress, out.warnings = wait_rollout(kube, ns, want.daemonset, ds, roll)
    return out


def wait_rollout(kube: KubeObjects, ns: str, name: str, ds: dict, roll: Rollout) -> tuple[dict, list[str], list[str]]:
    """Wait for calico-node's rollout with a budget from its size and strategy; (state, progress, warnings).

    Without ``roll.wait``: one read, the state and the budget a wait would get."""
    max_unavailable = roll.max_unavailable
    if max_unavailable is None:
        try:
            max_unavailable = rollout.parse_max_unavailable(rollout.strategy_of(ds)[1], "maxUnavailable")
        except rollout.RolloutError:
            max_unavailable = None  # a value this code cannot read: Kubernetes' default, 1
    desired = rollout.state_of(ds)["desired"]
    advice = rollout.recommendation(desired, rollout.resolve_batch(max_unavailable, desired), roll.batch_seconds)
    try:
        state, progress = rollout.wait(lambda: kube.get("DaemonSet", ns, name), f"{ns}/{name}", max_unavailable,
                                       roll.batch_seconds, roll.timeout, roll.sleep, roll.every,
                                       once=not roll.wait, fail=roll.timeout_fails)
    except rollout.RolloutError as exc:
        raise RolloutTimeout(str(exc), exc.state, exc.progress) from None
    return state, progress, [advice] if advice else []


class RolloutTimeout(K8sDatastoreError):
    """The rollout outlived its budget; carries where it stands and the progress lines."""

    def __init__(self, msg: str, state: dict, progress: list[str]):
        super().__init__(msg)
        self.state = state
        self.progress = progress


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
