#!/usr/bin/env bash
# Unit tests and ansible-test sanity on the lowest and the highest ansible-core requirements.txt allows
# (ansible-core>=A.B,<C.D: the newest A.B.x and the newest C.(D-1).x), each in its own venv.
# The venvs see the system packages (etcd3, pytest, ...) but carry their own ansible-core, which wins.
#   bash scripts/test-ansible-versions.sh            # both ends
#   ANSIBLE_CORE_SERIES="2.16" bash scripts/test-ansible-versions.sh
#   bash scripts/test-ansible-versions.sh --skip-system   # not the series python3 already runs (test-all.sh)
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
venvs=${ANSIBLE_VENV_ROOT:-$repo/.lab/venvs}
spec=$(grep -E '^ansible-core' requirements.txt | head -1)
low=$(sed -nE 's/.*>=([0-9]+\.[0-9]+).*/\1/p' <<<"$spec")
upper=$(sed -nE 's/.*<([0-9]+)\.([0-9]+).*/\1 \2/p' <<<"$spec")
if [ -z "$low" ] || [ -z "$upper" ]; then
  echo "cannot read the ansible-core range from requirements.txt: '$spec'" >&2; exit 2
fi
read -r umaj umin <<<"$upper"
high="$umaj.$((umin - 1))"
series=${ANSIBLE_CORE_SERIES:-$low $high}
system=$(python3 -c 'import ansible; print(".".join(ansible.__version__.split(".")[:2]))' 2>/dev/null || true)
failed=0
for v in $series; do
  if [ "${1:-}" = --skip-system ] && [ "$v" = "$system" ]; then
    echo "=== ansible-core $v: the system's series, covered by the pytest and sanity steps"; continue
  fi
  venv="$venvs/ansible-core-$v"
  echo "=== ansible-core $v: venv $venv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv --system-site-packages "$venv" || { failed=1; continue; }
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "ansible-core>=$v.0,<$v.999" \
    || { echo "=== ansible-core $v: pip install failed"; failed=1; continue; }
  installed=$("$venv/bin/python" -c 'import ansible; print(ansible.__version__)')
  case $installed in "$v".*) ;; *) echo "=== venv runs ansible-core $installed, not $v.x"; failed=1; continue ;; esac
  echo "=== ansible-core $installed: unit tests"
  PATH="$venv/bin:$PATH" python -m pytest -q -p no:cacheprovider tests/unit || failed=1
  echo "=== ansible-core $installed: sanity"
  PATH="$venv/bin:$PATH" SANITY_ROOT="/tmp/kubescale-sanity-$v-$$" bash scripts/sanity.sh || failed=1
  rm -rf "/tmp/kubescale-sanity-$v-$$"
done
exit $failed
