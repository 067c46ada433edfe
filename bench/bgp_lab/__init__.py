"""BGP scale lab: BIRD daemons in network namespaces, configured from kubescale.calico plans."""

import sys
from pathlib import Path

# The collection is importable as ansible_collections.kubescale.calico from the link that
# tests/conftest.py (or `make link`) creates in .lab/collections.
_COLLECTIONS = Path(__file__).resolve().parents[2] / ".lab" / "collections"
if not (_COLLECTIONS / "ansible_collections" / "kubescale" / "calico").exists():
    (_COLLECTIONS / "ansible_collections" / "kubescale").mkdir(parents=True, exist_ok=True)
    (_COLLECTIONS / "ansible_collections" / "kubescale" / "calico").symlink_to(
        Path(__file__).resolve().parents[2], target_is_directory=True)
if str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))
