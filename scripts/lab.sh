#!/usr/bin/env bash
# The lab: real systemd-nspawn hosts (tests/hosts/labhosts.py) converged by playbooks/site.yml.
#   bash scripts/lab.sh up       # boot the hosts, legacy etcd + Calico 2.6 data, run site.yml, BIRD on every
#                                # Calico node from etcd with the final route check, say where to look
#   bash scripts/lab.sh status   # hosts, PIDs, the Kubernetes API stand-in
#   bash scripts/lab.sh down     # stop everything by PID, unmount, remove the bridge
#   bash scripts/lab.sh create   # only boot the hosts and start the stand-in (molecule/default)
# Needs root, debootstrap, systemd-container (the template rootfs is built once and cached).
# Environment: KSLAB_STATE_DIR (default .lab/lab), KSLAB_BRIDGE (br-kslab), KSLAB_SUBNET (10.213.0.0/24),
# KSLAB_K8S_PORT (16443), KSLAB_WORKERS (number of workers, 2..150; default the inventory's 2: 9 hosts),
# KSLAB_ROLLOUT_TICK_MS (the stand-in replaces one batch of calico-node pods per tick; 200).
# Before booting, labhosts checks the host limits the hosts need (inotify instances and watches,
# bridge ports, memory), raises the inotify ones (root) and says what it cannot raise.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
export KSLAB_STATE_DIR=${KSLAB_STATE_DIR:-$REPO/.lab/lab}
export KSLAB_K8S_PORT=${KSLAB_K8S_PORT:-16443}
BRIDGE=${KSLAB_BRIDGE:-br-kslab}
SUBNET=${KSLAB_SUBNET:-10.213.0.0/24}
INV_STATIC=inventories/lab
INV_HOSTS=$KSLAB_STATE_DIR/inventory.yml
STANDIN=$KSLAB_STATE_DIR/k8s-standin
export ANSIBLE_CONFIG=$REPO/ansible.cfg
# Facts are gathered once and cached (docs/performance.md, "site.yml on many hosts"): a rerun does
# not contact hosts for the one fact the plan reads. Remove $KSLAB_STATE_DIR/facts to gather again.
export ANSIBLE_CACHE_PLUGIN=${ANSIBLE_CACHE_PLUGIN:-jsonfile}
export ANSIBLE_CACHE_PLUGIN_CONNECTION=${ANSIBLE_CACHE_PLUGIN_CONNECTION:-$KSLAB_STATE_DIR/facts}
export ANSIBLE_CACHE_PLUGIN_TIMEOUT=${ANSIBLE_CACHE_PLUGIN_TIMEOUT:-86400}
# the lab's helper programs (Kubernetes API stand-in, v1 seeder) import the collection and tests/
export PYTHONPATH=$REPO/.lab/collections:$REPO/tests${PYTHONPATH:+:$PYTHONPATH}

log() { printf '\n== %s\n' "$*"; }

link_collection() {
  mkdir -p .lab/collections/ansible_collections/kubescale
  ln -sfn "$REPO" .lab/collections/ansible_collections/kubescale/calico
}

standin_alive() {
  [[ -f $STANDIN/pid ]] || return 1
  local pid; pid=$(cat "$STANDIN/pid")
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q fake_k8s_api.py
}

standin_start() {
  if standin_alive; then return 0; fi
  mkdir -p "$STANDIN"
  rm -f "$STANDIN/pid" "$STANDIN/url"
  local pods; pods=$(python3 - "$KSLAB_STATE_DIR/spec.yml" <<'PY'
import sys, yaml
hosts = yaml.safe_load(open(sys.argv[1]))["hosts"]
print(sum(1 for h in hosts if {"master", "management", "proxy", "worker"} & set(h["groups"])))
PY
)
  local legacy; legacy=$(python3 -c "import yaml,sys; d=yaml.safe_load(open('$KSLAB_STATE_DIR/spec.yml')); print(next(h['ip'] for h in d['hosts'] if 'master' in h['groups']))")
  setsid python3 tests/integration/fake_k8s_api.py --dir "$STANDIN" --port "$KSLAB_K8S_PORT" --pods "$pods" \
    --rollout-tick-ms "${KSLAB_ROLLOUT_TICK_MS:-200}" --etcd-endpoints "http://$legacy:2379" >"$STANDIN/log" 2>&1 </dev/null &
  for _ in $(seq 50); do [[ -f $STANDIN/url ]] && break; sleep 0.1; done
  [[ -f $STANDIN/url ]] || { echo "the Kubernetes API stand-in did not start; see $STANDIN/log" >&2; exit 1; }
  echo "Kubernetes API STAND-IN (tests/integration/fake_k8s_api.py, not Kubernetes) at $(cat "$STANDIN/url"), pid $(cat "$STANDIN/pid")"
}

standin_stop() {
  if standin_alive; then
    local pid; pid=$(cat "$STANDIN/pid")
    kill -TERM "$pid"
    for _ in $(seq 50); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
    [[ -d /proc/$pid ]] && kill -KILL "$pid"
    echo "stopped the Kubernetes API stand-in (pid $pid)"
  fi
  rm -f "$STANDIN/pid"
}

playbook() { ansible-playbook -i "$INV_STATIC" -i "$INV_HOSTS" "$@"; }

where_to_look() {
  local master mgmt
  master=$(python3 -c "import yaml; d=yaml.safe_load(open('$KSLAB_STATE_DIR/spec.yml')); print(next(h['ip'] for h in d['hosts'] if 'master' in h['groups']))")
  mgmt=$(python3 -c "import yaml; d=yaml.safe_load(open('$KSLAB_STATE_DIR/spec.yml')); print(next(h['ip'] for h in d['hosts'] if 'management' in h['groups']))")
  cat <<TXT

== The lab is up. Where to look:
  inventory:   -i $INV_STATIC -i $INV_HOSTS
  ssh:         ssh -i $KSLAB_STATE_DIR/id_ed25519 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@$mgmt
  hosts:       bash scripts/lab.sh status
  rerun:       KSLAB_STATE_DIR=$KSLAB_STATE_DIR ANSIBLE_CACHE_PLUGIN=jsonfile ANSIBLE_CACHE_PLUGIN_CONNECTION=$KSLAB_STATE_DIR/facts \\
               ansible-playbook -i $INV_STATIC -i $INV_HOSTS playbooks/site.yml
  Calico 2.6 data (etcd v2 API, legacy etcd on the master):
               curl -s http://$master:2379/v2/keys/calico/v1/Ready
  migrated Calico v3 data (dedicated etcd, TLS with client certificates; run on a management host):
               ssh ... root@$mgmt 'set -a; . /etc/calico-etcd/etcdctl.env; etcdctl get --prefix --keys-only /calico/resources/v3/projectcalico.org/nodes'
               ssh ... root@$mgmt 'set -a; . /etc/calico-etcd/etcdctl.env; etcdctl get /calico/resources/v3/projectcalico.org/bgpconfigurations/default'
  or from here: ETCDCTL_API=3 etcdctl --endpoints https://$mgmt:2389 --cacert $KSLAB_STATE_DIR/controller-pki/ca.crt \\
               --cert $KSLAB_STATE_DIR/controller-pki/admin.crt --key $KSLAB_STATE_DIR/controller-pki/admin.key \\
               get --prefix --keys-only /calico/resources/v3/projectcalico.org/bgppeers
  route reflectors (BIRD): ssh ... root@<rr-1 address> birdc show protocols
  a worker's BGP (calico-node stand-in): ssh ... root@<worker-1 address> birdc show route   (the other worker's /26 via both reflectors)
  migration report: $KSLAB_STATE_DIR/migration-report.json; snapshots: $KSLAB_STATE_DIR/migration-snapshots
  Kubernetes objects as the STAND-IN holds them (calico-config, calico-etcd-secrets, calico-node): $STANDIN/objects.json
  tear down:   make lab-down   (bash scripts/lab.sh down)
TXT
}

create() {
  link_collection
  mkdir -p "$KSLAB_STATE_DIR"
  python3 scripts/lab_spec.py "$INV_STATIC/hosts.yml" --bridge "$BRIDGE" --subnet "$SUBNET" \
    ${KSLAB_WORKERS:+--workers "$KSLAB_WORKERS"} >"$KSLAB_STATE_DIR/spec.yml"
  log "booting $(grep -c '^- name:' "$KSLAB_STATE_DIR/spec.yml") lab hosts (systemd-nspawn; host limits checked first)"
  python3 scripts/labhosts --state-dir "$KSLAB_STATE_DIR" up --spec "$KSLAB_STATE_DIR/spec.yml" >/dev/null
  log "starting the Kubernetes API stand-in"
  standin_start
}

case ${1:-up} in
  create)  # hosts and the stand-in only (molecule/default's create step)
    create
    ;;
  up)
    start=$(date +%s)
    create
    log "legacy etcd (v2 API) with Calico 2.6 data on the master"
    playbook tests/lab/prepare.yml
    log "playbooks/site.yml"
    playbook playbooks/site.yml
    log "calico-node stand-ins from etcd on every Calico node; final check: every node has every other node's block"
    playbook tests/lab/calico_node_from_etcd.yml
    where_to_look
    echo "  (make lab took $(( $(date +%s) - start )) s)"
    ;;
  down)
    standin_stop
    python3 scripts/labhosts --state-dir "$KSLAB_STATE_DIR" down
    ;;
  status)
    python3 scripts/labhosts --state-dir "$KSLAB_STATE_DIR" status
    if standin_alive; then echo "Kubernetes API stand-in: $(cat "$STANDIN/url") pid $(cat "$STANDIN/pid")"; else echo "Kubernetes API stand-in: not running"; fi
    ;;
  *)
    echo "usage: $0 up|down|status|create" >&2
    exit 2
    ;;
esac
