"""Generate the etcd v3 API stubs the collection ships (plugins/module_utils/etcd/etcdrpc/).

etcd3 0.12's own generated modules only load with the pure-Python protobuf. They carry etcd's
``kv.proto``, ``auth.proto`` and ``rpc.proto`` as serialized file descriptors; this script reads
those bytes from the installed etcd3 package (parsing its source, without importing it), hands them
to the current protoc as a descriptor set (``--descriptor_set_in``), and rewrites the generated
top-level imports (``import kv_pb2``) into collection imports that Ansible's module packaging follows.

    python3 scripts/gen_etcd_stubs.py            # write the stubs
    python3 scripts/gen_etcd_stubs.py --check    # exit 1 if regenerating would change a byte

Needs etcd3 (the descriptors) and grpcio-tools (protoc), pinned in requirements.txt: another
grpcio-tools version generates other bytes.

Why not a fork with current stubs: upstream python-etcd3 fixed this on master but never released it
(0.12.0, 2020, is the last release); the fork on PyPI (python3-etcd3 0.13.0, one release) installs the
same top-level package ``etcd3`` (it would replace the declared dependency, not sit beside it) and
declares ``protobuf>=3.6.1`` while its stubs need protobuf >= 5.29. Stubs generated here from the
descriptors of the declared etcd3 keep one dependency, pinned and reproducible byte for byte.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "plugins" / "module_utils" / "etcd" / "etcdrpc"
PACKAGE = "ansible_collections.kubescale.calico.plugins.module_utils.etcd.etcdrpc"
PROTOS = ("kv", "auth", "rpc")  # dependencies first
SHIPPED = ("kv_pb2.py", "auth_pb2.py", "rpc_pb2.py", "rpc_pb2_grpc.py")  # kv/auth define no service
HEADER = """\
# GENERATED CODE - DO NOT EDIT. etcd's v3 API (kv.proto, auth.proto, rpc.proto as serialized in the
# installed etcd3 {etcd3} package) compiled by grpcio-tools {tools}. Regenerate with:
#     python3 scripts/gen_etcd_stubs.py
# pylint: skip-file
"""


def etcd3_descriptors() -> dict[str, bytes]:
    """The serialized FileDescriptorProto of each proto, read from etcd3's generated source."""
    spec = importlib.util.find_spec("etcd3")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("gen_etcd_stubs: the Python package etcd3 is not installed")
    source_dir = Path(spec.submodule_search_locations[0]) / "etcdrpc"
    found = {}
    for name in PROTOS:
        tree = ast.parse((source_dir / f"{name}_pb2.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "serialized_pb":
                literal = node.value.args[0] if isinstance(node.value, ast.Call) else node.value
                data = ast.literal_eval(literal)
                found[name] = data.encode("latin-1") if isinstance(data, str) else data
                break
        else:
            sys.exit(f"gen_etcd_stubs: no serialized descriptor in {source_dir / name}_pb2.py")
    return found


def descriptor_set(descriptors: dict[str, bytes]) -> bytes:
    """The protos as one serialized FileDescriptorSet, what ``protoc --descriptor_set_in`` reads."""
    from google.protobuf import descriptor_pb2

    files = [descriptor_pb2.FileDescriptorProto.FromString(descriptors[name]) for name in PROTOS]
    return descriptor_pb2.FileDescriptorSet(file=files).SerializeToString(deterministic=True)


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {"etcd3": version("etcd3"), "tools": version("grpcio-tools")}


def compile_protos(work: Path) -> dict[str, str]:
    """Run protoc on the descriptor set; return the shipped files' text, imports rewritten."""
    (work / "etcd.pb").write_bytes(descriptor_set(etcd3_descriptors()))
    out = work / "out"
    out.mkdir()
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"--descriptor_set_in={work / 'etcd.pb'}",
                    f"--python_out={out}", f"--grpc_python_out={out}", *(f"{p}.proto" for p in PROTOS)],
                   check=True)
    header = HEADER.format(**versions())
    files = {"__init__.py": header}
    for name in SHIPPED:
        text = (out / name).read_text()
        text = re.sub(r"^import (\w+_pb2) as (\w+)$", rf"from {PACKAGE} import \1 as \2", text, flags=re.M)
        files[name] = header + text
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped stubs, write nothing")
    parser.add_argument("--out", type=Path, default=TARGET, help="target directory (default: the collection's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = compile_protos(Path(tmp))
    if args.check:
        stale = [n for n, text in files.items() if not (args.out / n).is_file()
                 or (args.out / n).read_bytes() != text.encode("utf-8")]
        extra = sorted(p.name for p in args.out.glob("*.py") if p.name not in files)
        if stale or extra:
            print(f"gen_etcd_stubs: {args.out} differs from a regeneration: {', '.join(stale + extra)}")
            return 1
        print(f"gen_etcd_stubs: {args.out} is what regenerating gives ({len(files)} files)")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_bytes(text.encode("utf-8"))
    print(f"gen_etcd_stubs: wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
