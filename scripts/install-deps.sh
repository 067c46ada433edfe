#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs to run the tests and the lab (idempotent).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive
pkgs=(etcd-server etcd-client bird2 systemd-container debootstrap iproute2 openssh-client git make openssl
      ca-certificates procps psmisc)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  # Keep Debian's own etcd/bird units from starting on this machine: tests and the lab run their own.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi
python3 -m pip install -q --disable-pip-version-check -r "$repo/requirements.txt" 2>&1 | grep -v "^WARNING: Running pip as\|dependency resolver\|which is incompatible\|^ERROR: pip's" || true
python3 -c "import importlib.util as u, grpc_tools, molecule, testinfra, kubernetes, hypothesis; assert u.find_spec('etcd3')"
# BIRD 1.6 (Calico's BIRD is a 1.6 fork) conflicts with bird2 as a package: unpack it for the tests.
if [ ! -x "$repo/.lab/bird16/usr/sbin/bird" ]; then
  tmp=$(mktemp -d)
  mkdir -p "$repo/.lab/bird16"
  (cd "$tmp" && apt-get download -qq bird >/dev/null 2>&1 && dpkg -x bird_*.deb "$repo/.lab/bird16") || \
    echo "note: BIRD 1.6 not unpacked; its tests will skip"
  rm -rf "$tmp"
fi
# Link the checkout as ansible_collections/kubescale/calico for playbooks run from the repo.
mkdir -p "$repo/.lab/collections/ansible_collections/kubescale"
ln -sfn "$repo" "$repo/.lab/collections/ansible_collections/kubescale/calico"
