"""A small STAND-IN for the Kubernetes API server (HTTPS on loopback), for calico_k8s_datastore.

kube-apiserver cannot run on the test machines, so the one part of the system that talks to
Kubernetes is tested against this stand-in. It is not Kubernetes: it serves only what the module
uses, with the API's shapes and rules for them:

- ``/api/v1/namespaces/{ns}/configmaps[/{name}]`` and ``.../secrets[/{name}]``: GET, POST, PUT, PATCH;
- ``/apis/apps/v1/namespaces/{ns}/daemonsets/{name}``: GET, PUT, PATCH;
- ``metadata.resourceVersion`` from one counter; a PUT with a stale resourceVersion gets 409;
- a DaemonSet whose ``spec`` changes gets ``metadata.generation + 1``; when its pod template changes
  its pods are replaced the way a RollingUpdate does: ``spec.updateStrategy.rollingUpdate.maxUnavailable``
  pods at a time (a number, or a percentage of the pods rounded up; 1 when unset), one batch per
  ``rollout_tick`` seconds of wall time, the batch in flight counted as unavailable
  (``updatedNumberScheduled``, ``numberAvailable``, ``numberReady``); an ``OnDelete`` DaemonSet replaces none;
- a bearer token is required when one is configured (401 otherwise);
- every request is logged in ``requests`` (method, path) for tests to assert on.

CLI (the lab runs it on the controller, clearly as a stand-in)::

    python fake_k8s_api.py --dir D --port 16443 [--token T] [--pods 7] [--max-unavailable 1|10%]
                           [--rollout-tick-ms 200] [--etcd-endpoints URL,...]

writes D/ca.crt, D/token, D/pid, D/url and D/objects.json (after every write); serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_PATH = re.compile(
    r"^/(?:api/v1|apis/apps/v1)/namespaces/(?P<ns>[^/]+)/(?P<plural>configmaps|secrets|daemonsets)(?:/(?P<name>[^/?]+))?"
)
_KIND = {"configmaps": "ConfigMap", "secrets": "Secret", "daemonsets": "DaemonSet"}


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (what the module sends)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class FakeKubeAPI:
    """State and HTTP server of the stand-in."""

    def __init__(self, cert: str, key: str, token: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 rollout_tick: float = 0.05):
        self.token = token
        self.rollout_tick = rollout_tick  # seconds per batch of maxUnavailable pods
        self._rollouts: dict[tuple[str, str, str], dict] = {}  # DaemonSet -> {start, base}
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.conflict_next_put = 0  # tests: answer the next N PUTs with 409
        self.state_file: Path | None = None  # the lab: the objects as JSON after every write
        self._rv = 100
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"api": self})
        self.server = ThreadingHTTPServer((host, port), handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://{host}:{self.server.server_address[1]}"
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ state
    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def seed(self, kind: str, ns: str, body: dict) -> dict:
        """Store an object as if created earlier."""
        with self._lock:
            obj = copy.deepcopy(body)
            obj.setdefault("metadata", {})["namespace"] = ns
            obj["kind"] = kind
            obj["metadata"]["resourceVersion"] = self._next_rv()
            if kind == "DaemonSet":
                obj["metadata"]["generation"] = 1
                pods = obj.pop("_pods", 3)
                obj["status"] = {"desiredNumberScheduled": pods, "currentNumberScheduled": pods,
                                 "updatedNumberScheduled": pods, "numberAvailable": pods, "numberReady": pods,
                                 "observedGeneration": 1}
            self.objects[(kind, ns, obj["metadata"]["name"])] = obj
            return obj

    def seed_calico(self, ns: str = "kube-system", pods: int = 3, endpoints: str = "http://127.0.0.1:2379",
                    max_unavailable: int | str = 1) -> None:
        """A Calico 2.6-style install: calico-config, calico-etcd-secrets (empty), calico-node."""
        self.seed("ConfigMap", ns, {"apiVersion": "v1", "metadata": {"name": "calico-config"},
                                    "data": {"etcd_endpoints": endpoints, "etcd_ca": "", "etcd_cert": "",
                                             "etcd_key": "", "calico_backend": "bird"}})
        self.seed("Secret", ns, {"apiVersion": "v1", "metadata": {"name": "calico-etcd-secrets"},
                                 "type": "Opaque", "data": {}})
        self.seed("DaemonSet", ns, {
            "apiVersion": "apps/v1", "metadata": {"name": "calico-node"}, "_pods": pods,
            "spec": {"selector": {"matchLabels": {"k8s-app": "calico-node"}},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable}},
                     "template": {"metadata": {"labels": {"k8s-app": "calico-node"}},
                                  "spec": {"containers": [{"name": "calico-node", "image": "calico/node:v2.6.12"}]}}}})

    def _dump(self) -> None:
        if self.state_file:
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"/".join(k): v for k, v in sorted(self.objects.items())}, indent=2) + "\n")
            tmp.replace(self.state_file)

    def get(self, kind: str, ns: str, name: str) -> dict | None:
        return copy.deepcopy(self.objects.get((kind, ns, name)))

    def set_rollout_tick(self, seconds: float | None) -> None:
        """Change the rollout speed from now on (pods already updated stay updated); None pauses it."""
        with self._lock:
            for key, roll in self._rollouts.items():
                roll.update(base=self._updated(self.objects[key], roll), start=time.monotonic())
            self.rollout_tick = seconds
            for key in list(self._rollouts):
                self._advance_rollout(key, self.objects[key])  # status as of now, for get()

    def _batch(self, obj: dict) -> int:
        strategy = obj.get("spec", {}).get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return 0
        value = str((strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1))
        desired = obj["status"]["desiredNumberScheduled"]
        n = math.ceil(desired * int(value[:-1]) / 100) if value.endswith("%") else int(value)
        return max(1, n)

    def _updated(self, obj: dict, roll: dict) -> int:
        if self.rollout_tick is None:
            return roll["base"]
        ticks = int((time.monotonic() - roll["start"]) / self.rollout_tick) if self.rollout_tick > 0 else 10**9
        return min(obj["status"]["desiredNumberScheduled"], roll["base"] + ticks * self._batch(obj))

    def _advance_rollout(self, key: tuple[str, str, str], obj: dict) -> None:
        """The status a DaemonSet controller would report now (observedGeneration, updated, available)."""
        st = obj["status"]
        st["observedGeneration"] = obj["metadata"]["generation"]
        roll = self._rollouts.get(key)
        if roll is None:
            return
        desired = st["desiredNumberScheduled"]
        updated = self._updated(obj, roll)
        in_flight = min(self._batch(obj), desired - updated)
        st.update(updatedNumberScheduled=updated, numberAvailable=desired - in_flight, numberReady=desired - in_flight)
        if updated >= desired:
            del self._rollouts[key]

    def handle(self, method: str, path: str, body: bytes, headers) -> tuple[int, dict]:
        self.requests.append((method, path))
        if self.token and headers.get("Authorization") != f"Bearer {self.token}":
            return 401, _status(401, "Unauthorized", "Unauthorized")
        m = _PATH.match(path)
        if not m:
            return 404, _status(404, "NotFound", f"the stand-in does not serve {path}")
        kind, ns, name = _KIND[m["plural"]], m["ns"], m["name"]
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return 400, _status(400, "BadRequest", "body is not JSON")
        with self._lock:
            key = (kind, ns, name)
            obj = self.objects.get(key)
            if method == "GET" and name:
                if obj is None:
                    return 404, _status(404, "NotFound", f'{m["plural"]} "{name}" not found')
                if kind == "DaemonSet":
                    self._advance_rollout(key, obj)
                return 200, copy.deepcopy(obj)
            if method == "POST" and not name and kind != "DaemonSet":
                name = (data or {}).get("metadata", {}).get("name")
                if not name:
                    return 422, _status(422, "Invalid", "metadata.name: Required value")
                if (kind, ns, name) in self.objects:
                    return 409, _status(409, "AlreadyExists", f'{m["plural"]} "{name}" already exists')
                new = copy.deepcopy(data)
                new["metadata"].update(namespace=ns, resourceVersion=self._next_rv())
                self.objects[(kind, ns, name)] = new
                self._dump()
                return 201, copy.deepcopy(new)
            if method in ("PUT", "PATCH") and name:
                if obj is None:
                    return 404, _status(404, "NotFound", f'{m["plural"]} "{name}" not found')
                if method == "PUT":
                    sent_rv = (data or {}).get("metadata", {}).get("resourceVersion")
                    if self.conflict_next_put or sent_rv != obj["metadata"]["resourceVersion"]:
                        self.conflict_next_put = max(0, self.conflict_next_put - 1)
                        return 409, _status(409, "Conflict", "the object has been modified; please apply your "
                                                             "changes to the latest version and try again")
                    new = copy.deepcopy(data)
                else:
                    ctype = headers.get("Content-Type", "")
                    if "merge-patch" not in ctype:
                        return 415, _status(415, "UnsupportedMediaType", f"the stand-in accepts merge patches, "
                                                                         f"not {ctype}")
                    new = merge_patch(obj, data)
                new["metadata"]["resourceVersion"] = self._next_rv()
                new["metadata"]["namespace"] = ns
                if kind == "DaemonSet":
                    new["status"] = obj["status"]
                    new["metadata"]["generation"] = obj["metadata"]["generation"]
                    if new.get("spec") != obj.get("spec"):
                        new["metadata"]["generation"] += 1
                    if new.get("spec", {}).get("template") != obj.get("spec", {}).get("template"):
                        # a new pod template: every pod is replaced again, from now on
                        new["status"] = dict(obj["status"], updatedNumberScheduled=0)
                        self._rollouts[key] = {"start": time.monotonic(), "base": 0}
                self.objects[key] = new
                self._dump()
                return 200, copy.deepcopy(new)
        return 405, _status(405, "MethodNotAllowed", f"{method} {path}")

    # ------------------------------------------------------------ lifecycle
    def start(self) -> FakeKubeAPI:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason,
            "code": code}


class _Handler(BaseHTTPRequestHandler):
    api: FakeKubeAPI

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        code, payload = self.api.handle(self.command, self.path.split("?")[0], body, self.headers)
        raw = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, *args) -> None:  # quiet
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Kubernetes API STAND-IN for the kubescale.calico lab (not Kubernetes)")
    ap.add_argument("--dir", required=True, help="writes ca.crt, token, pid, requests.log here")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=16443)
    ap.add_argument("--token", default="kubescale-lab-standin-token")
    ap.add_argument("--pods", type=int, default=3, help="desiredNumberScheduled of calico-node")
    ap.add_argument("--max-unavailable", default="1", help="calico-node's maxUnavailable as seeded (5 or 10%%)")
    ap.add_argument("--rollout-tick-ms", type=int, default=200, help="milliseconds per batch of maxUnavailable pods")
    ap.add_argument("--etcd-endpoints", default="http://127.0.0.1:2379")
    args = ap.parse_args(argv)
    from pki import TestPKI  # tests/ and the collection come on PYTHONPATH (tests/conftest.py, scripts/lab.sh)

    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    pki = TestPKI(d / "pki", ca_name="k8s-standin-ca")
    cert, key = pki.issue("k8s-standin", server=True, client=False, ips=(args.host,), dns=("localhost",))
    (d / "ca.crt").write_bytes(pki.ca_cert.read_bytes())
    (d / "token").write_text(args.token + "\n")
    os.chmod(d / "token", 0o600)
    api = FakeKubeAPI(str(cert), str(key), token=args.token, host=args.host, port=args.port,
                      rollout_tick=args.rollout_tick_ms / 1000)
    api.state_file = d / "objects.json"
    mu = args.max_unavailable
    api.seed_calico(pods=args.pods, endpoints=args.etcd_endpoints, max_unavailable=mu if mu.endswith("%") else int(mu))
    api._dump()
    (d / "pid").write_text(f"{os.getpid()}\n")
    (d / "url").write_text(api.url + "\n")

    def _stop(*_):
        threading.Thread(target=api.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"Kubernetes API STAND-IN (not Kubernetes) on {api.url}", flush=True)
    api.server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
