#!/usr/bin/env bash
# Run `ansible-test sanity` on this collection without network access to ansible's CI file host.
# ansible-test needs the collection at .../ansible_collections/kubescale/calico as a git checkout,
# so the committed HEAD plus the working tree's changes are copied there.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${SANITY_ROOT:-/tmp/kubescale-sanity}
dest=$work/ansible_collections/kubescale/calico
cache=$HOME/.ansible/test/cache
# The pip version ansible-test bootstraps (24.2 for Python 3.11 in ansible-core 2.16–2.19).
pip_versions=$(grep -ho "pip='[0-9.]*'" "$(python3 -c 'import ansible_test,os;print(os.path.dirname(ansible_test.__file__))')"/_internal/python_requirements.py | tr -dc "0-9.\n" || true)
mkdir -p "$cache"
for v in $pip_versions 24.2; do
  cp "$repo/scripts/get_pip_offline.py" "$cache/get_pip_${v//./_}.py"
done
rm -rf "$dest"; mkdir -p "$(dirname "$dest")"
git clone -q "$repo" "$dest"
(cd "$repo" && git ls-files -mo --exclude-standard -z) | (cd "$repo" && xargs -0r cp --parents -t "$dest" 2>/dev/null || true)
cd "$dest"
git add -A >/dev/null 2>&1 && git -c user.email=ci@local -c user.name=ci commit -qm wip >/dev/null 2>&1 || true
ansible-test sanity --python "$(python3 -c 'import sys;print(f"{sys.version_info[0]}.{sys.version_info[1]}")')" \
  --requirements --color no "$@"
