"""Make the checkout importable as ``ansible_collections.kubescale.calico``.

Ansible resolves collection code only under an ``ansible_collections/<ns>/<name>`` path, so the
tests link the checkout into ``.lab/collections`` (the same link ``make link`` creates) and put
that on ``sys.path`` (and on ``PYTHONPATH`` for the helper programs tests start).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS = REPO / ".lab" / "collections"


def _link_collection() -> None:
    link = COLLECTIONS / "ansible_collections" / "kubescale" / "calico"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        try:
            link.symlink_to(REPO, target_is_directory=True)
        except FileExistsError:  # another worker linked it first
            pass
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    # pytest.ini's pythonpath may have put the folder on sys.path before it existed: forget that miss
    sys.path_importer_cache.pop(str(COLLECTIONS), None)
    importlib.invalidate_caches()
    os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", f"{COLLECTIONS}:{Path.home()}/.ansible/collections")
    # helper programs the tests start (migrate_driver.py, fake_k8s_api.py) import the collection too
    paths = [str(COLLECTIONS), str(REPO / "tests")]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                                        if p and p not in paths])


_link_collection()
