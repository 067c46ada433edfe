"""Write a labhosts spec (tests/hosts/labhosts.py) from the static lab inventory.

inventories/lab/hosts.yml is the one list of lab hosts, their groups and addresses. With --subnet
the addresses move into another /24 (same last octet), so that molecule/default and `make lab` can
run side by side on different bridges.

    lab_spec.py inventories/lab/hosts.yml --bridge br-kslab --subnet 10.213.0.0/24 [--workers 40] > spec.yml

--workers N (``KSLAB_WORKERS=N make lab``) sizes the worker group: the inventory's workers first
(worker-1 .41, worker-2 .42), then worker-3..N at .103.. (.100 + n), racks rack-a/b/c in turn.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

import yaml


def hosts_of(inventory: dict) -> dict[str, dict]:
    """{name: {"ip": ..., "groups": [...]}} from a static YAML inventory with one level of children."""
    out: dict[str, dict] = {}
    for group, body in ((inventory.get("all") or {}).get("children") or {}).items():
        for name, hv in ((body or {}).get("hosts") or {}).items():
            entry = out.setdefault(name, {"ip": None, "groups": []})
            entry["groups"].append(group)
            if hv and hv.get("ansible_host"):
                entry["ip"] = hv["ansible_host"]
    return out


EXTRA_WORKER_BASE = 100  # worker-n (beyond the inventory's) at last octet 100 + n
MIN_WORKERS = 2  # the lab's checks compare two workers' routes
MAX_WORKERS = 250 - EXTRA_WORKER_BASE  # last octet <= 250 (.254 is the proxy's router peer)
RACKS = ("rack-a", "rack-b", "rack-c")


class SpecError(Exception):
    """The spec cannot be made; the message says why."""


def with_workers(hosts: dict[str, dict], workers: int) -> dict[str, dict]:
    """``hosts`` with exactly ``workers`` hosts in the worker group (the inventory's first, then generated)."""
    if not MIN_WORKERS <= workers <= MAX_WORKERS:
        raise SpecError(f"workers: {workers} is out of range, the lab takes {MIN_WORKERS} to {MAX_WORKERS} workers")
    listed = [n for n, h in hosts.items() if h["groups"] == ["worker"]]
    out = {n: h for n, h in hosts.items() if n not in listed[workers:]}
    taken = set(out)
    n = 0
    while len([h for h in out.values() if "worker" in h["groups"]]) < workers:
        n += 1
        name = f"worker-{n}"
        if name in taken:
            continue
        out[name] = {"ip": f"0.0.0.{EXTRA_WORKER_BASE + n}", "groups": ["worker"],
                     "vars": {"calico_rack": RACKS[(n - 1) % len(RACKS)]}}
    return out


def make_spec(inventory: dict, bridge: str, subnet: str, workers: int | None = None) -> dict:
    """The labhosts spec: every host of the inventory (workers sized by ``workers``) in ``subnet``."""
    net = ipaddress.ip_network(subnet)
    if net.prefixlen != 24:
        raise SpecError("--subnet must be a /24")
    hosts = hosts_of(inventory)
    if workers is not None:
        hosts = with_workers(hosts, workers)
    spec: dict = {"bridge": bridge, "subnet": str(net), "hosts": []}
    for name, h in hosts.items():
        if not h["ip"]:
            raise SpecError(f"host {name} has no ansible_host")
        last = int(ipaddress.ip_address(h["ip"])) & 0xFF
        entry = {"name": name, "ip": str(net.network_address + last), "groups": h["groups"]}
        if h.get("vars"):
            entry["vars"] = h["vars"]
        spec["hosts"].append(entry)
    return spec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("inventory")
    ap.add_argument("--bridge", default="br-kslab")
    ap.add_argument("--subnet", default="10.213.0.0/24")
    ap.add_argument("--workers", type=int, help="number of workers (default: those of the inventory)")
    args = ap.parse_args()
    with open(args.inventory) as fh:
        inventory = yaml.safe_load(fh)
    try:
        spec = make_spec(inventory, args.bridge, args.subnet, args.workers)
    except SpecError as exc:
        print(f"lab_spec: {exc}", file=sys.stderr)
        return 1
    yaml.safe_dump(spec, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
