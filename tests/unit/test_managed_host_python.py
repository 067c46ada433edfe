"""Code that runs on managed hosts stays importable on Python 3.10 (Ubuntu 22.04), checked by vermin.

tests/managed_host_files.txt lists that code (scripts/test-all.sh's ``vermin`` step reads the same
list); the list must hold every collection file those modules import, directly or not.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LISTED = [line.strip() for line in (REPO / "tests" / "managed_host_files.txt").read_text().splitlines() if line.strip()]
MANAGED_HOST_MODULES = ["plugins/modules/bgp_status.py", "plugins/modules/pki_certificate.py"]
PREFIX = "ansible_collections.kubescale.calico."
VERMIN = [shutil.which("vermin") or "vermin", "--target=3.10-", "--no-tips", "--violations"]


def _collection_imports(path: Path) -> set[str]:
    """Repository paths of the collection modules ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
        for name in names:
            if name.startswith(PREFIX):
                rel = Path(*name[len(PREFIX):].split("."))
                found.add(str(rel.with_suffix(".py")) if (REPO / rel.with_suffix(".py")).exists()
                          else str(rel / "__init__.py"))
    return found


def test_the_list_holds_every_file_the_managed_host_modules_import():
    todo, seen = list(MANAGED_HOST_MODULES), set()
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(_collection_imports(REPO / current))
    assert seen - set(LISTED) == set(), "add these to tests/managed_host_files.txt"


def test_managed_host_code_needs_no_python_newer_than_3_10():
    out = subprocess.run([*VERMIN, *LISTED], cwd=REPO, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_vermin_catches_a_3_11_only_feature(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import datetime\nfrom typing import Self\nNOW = datetime.datetime.now(datetime.UTC)\n")
    out = subprocess.run([*VERMIN, str(sample)], capture_output=True, text=True, check=False)
    assert out.returncode != 0
    assert "typing.Self" in out.stdout and "datetime.UTC" in out.stdout
