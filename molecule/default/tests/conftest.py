"""Shared helpers of the molecule/default verifier (testinfra against the labhosts inventory)."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
STATE = Path(os.environ.get("KSLAB_STATE_DIR", REPO / ".lab" / "molecule-default"))
V3 = "/calico/resources/v3/projectcalico.org"


def etcdctl(host, args: str, check: bool = True):
    """etcdctl on a management host with the admin client certificate (/etc/calico-etcd/etcdctl.env)."""
    result = host.run(f"set -a; . /etc/calico-etcd/etcdctl.env; set +a; etcdctl {args}")
    if check:
        assert result.rc == 0, f"etcdctl {args}: {result.stderr}"
    return result


def keys(host, prefix: str) -> list[str]:
    out = etcdctl(host, f"get --prefix --keys-only {shlex.quote(prefix)}").stdout
    return [line for line in out.splitlines() if line.strip()]


def get_json(host, key: str) -> dict:
    out = etcdctl(host, f"get --print-value-only {shlex.quote(key)}").stdout.strip()
    assert out, f"{key} is not in the Calico etcd"
    return json.loads(out)


def spec() -> dict:
    import yaml

    return yaml.safe_load((STATE / "spec.yml").read_text())
