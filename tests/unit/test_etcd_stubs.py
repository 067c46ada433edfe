"""The etcd API stubs the collection ships: regenerating them gives the same bytes, and they load
with the compiled (upb) protobuf, with no environment variable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STUBS = REPO / "plugins" / "module_utils" / "etcd" / "etcdrpc"
GEN = REPO / "scripts" / "gen_etcd_stubs.py"


def _gen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GEN), *args], capture_output=True, text=True, timeout=120, check=False)


def test_regenerating_gives_the_shipped_bytes():
    proc = _gen("--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_names_a_stub_that_differs(tmp_path):
    copy = tmp_path / "etcdrpc"
    shutil.copytree(STUBS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "kv_pb2.py").write_bytes((copy / "kv_pb2.py").read_bytes() + b"\n")
    (copy / "stray_pb2.py").write_text("")
    proc = _gen("--check", "--out", str(copy))
    assert proc.returncode == 1
    assert "kv_pb2.py" in proc.stdout and "stray_pb2.py" in proc.stdout
    assert "rpc_pb2.py" not in proc.stdout


def test_stubs_header_and_collection_imports():
    for path in STUBS.glob("*.py"):
        text = path.read_text()
        assert text.startswith("# GENERATED CODE - DO NOT EDIT."), path
        assert "python3 scripts/gen_etcd_stubs.py" in text.split("\n", 4)[2], path
        # top-level imports (`import kv_pb2`) would not resolve inside Ansible's module payload
        assert not [line for line in text.splitlines() if line.startswith("import ") and "_pb2" in line], path


def test_client_loads_the_stubs_on_the_compiled_protobuf_without_env():
    env = {k: v for k, v in os.environ.items() if k != "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"}
    code = ("from ansible_collections.kubescale.calico.plugins.module_utils.etcd import client\n"
            "from google.protobuf.internal import api_implementation\n"
            "import sys\n"
            "print(client.HAS_ETCD3, api_implementation.Type(), 'etcd3' in sys.modules)\n"
            "print(client.rpc.RangeRequest(key=b'a', limit=5).SerializeToString())\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["True upb False", "b'\\n\\x01a\\x18\\x05'"]
