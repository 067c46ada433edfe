"""Write a labhosts spec (tests/hosts/labhosts.py) from the static lab inventory.

inventories/lab/hosts.yml is the one list of lab hosts, their groups and addresses. With --subnet
the addresses move into another /24 (same last octet), so that molecule/default and `make lab` can
run side by side on different bridges.

    lab_spec.py inventories/lab/hosts.yml --bridge br-kslab --subnet 10.213.0.0/24 > spec.yml
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("inventory")
    ap.add_argument("--bridge", default="br-kslab")
    ap.add_argument("--subnet", default="10.213.0.0/24")
    args = ap.parse_args()
    net = ipaddress.ip_network(args.subnet)
    if net.prefixlen != 24:
        print("lab_spec: --subnet must be a /24", file=sys.stderr)
        return 1
    with open(args.inventory) as fh:
        hosts = hosts_of(yaml.safe_load(fh))
    spec = {"bridge": args.bridge, "subnet": str(net), "hosts": []}
    for name, h in hosts.items():
        if not h["ip"]:
            print(f"lab_spec: host {name} has no ansible_host", file=sys.stderr)
            return 1
        last = int(ipaddress.ip_address(h["ip"])) & 0xFF
        spec["hosts"].append({"name": name, "ip": str(net.network_address + last), "groups": h["groups"]})
    yaml.safe_dump(spec, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
