"""The execution environment definition builds a complete context with ``ansible-builder create``.

No container engine is needed: ``create`` writes the Containerfile and copies every requirement
file into ``context/_build``. The collection tarball the image installs is built from this
checkout, the way README "Execution environment" says.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EE_FILES = ["execution-environment.yml", "meta/ee-requirements.txt", "bindep.txt", "ee/requirements.yml"]

pytestmark = pytest.mark.skipif(shutil.which("ansible-builder") is None, reason="pip install ansible-builder")


def _lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _run(*cmd: str, cwd: Path | None = None) -> str:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, f"{' '.join(cmd)}: {out.stdout[-2000:]}{out.stderr[-2000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    _run("ansible-galaxy", "collection", "build", "--force", "--output-path", str(out), str(REPO))
    (built,) = out.glob("kubescale-calico-*.tar.gz")
    return built


@pytest.fixture(scope="module")
def context(tmp_path_factory, tarball) -> Path:
    """``ansible-builder create`` run on a copy of the EE files plus the freshly built tarball."""
    work = tmp_path_factory.mktemp("ee")
    for name in EE_FILES:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, work / name)
    shutil.copy(tarball, work / "ee" / tarball.name)
    _run("ansible-builder", "create", "-f", str(work / "execution-environment.yml"), "-c", str(work / "context"),
         "--output-filename", "Containerfile")
    return work / "context"


def test_create_writes_containerfile_with_collection_requirements_and_bindep(context):
    containerfile = (context / "Containerfile").read_text()
    build = context / "_build"
    assert _lines(build / "requirements.txt") == _lines(REPO / "meta" / "ee-requirements.txt")
    assert _lines(build / "bindep.txt") == _lines(REPO / "bindep.txt")
    assert "ansible-galaxy collection install" in containerfile and "-r requirements.yml" in containerfile
    assert "COPY _build/collections/ /build/collections/" in containerfile
    assert 'ANSIBLE_INSTALL_REFS="ansible-core>=2.16,<2.20' in containerfile


def test_galaxy_requirements_name_the_tarball_of_galaxy_yml_version(context, tarball):
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert tarball.name == f"kubescale-calico-{version}.tar.gz"
    assert (context / "_build" / "collections" / tarball.name).is_file()
    (entry,) = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    assert entry == {"name": f"/build/collections/{tarball.name}", "type": "file"}


def test_ee_requirements_are_the_runtime_lines_of_requirements_txt():
    runtime = _lines(REPO / "meta" / "ee-requirements.txt")
    assert runtime and set(runtime) <= set(_lines(REPO / "requirements.txt"))
    assert not {"molecule", "pytest", "ansible-core"} & {ln.split("=")[0].split(">")[0] for ln in runtime}


def test_introspect_of_the_installed_collection_uses_meta_execution_environment(tmp_path, tarball):
    """An image that merely includes kubescale.calico gets the runtime packages, not the dev superset."""
    _run("ansible-galaxy", "collection", "install", "--force", "-p", str(tmp_path), str(tarball))
    _run("ansible-builder", "introspect", "--write-pip", str(tmp_path / "pip.txt"),
         "--write-bindep", str(tmp_path / "bindep.txt"), str(tmp_path))
    pip = (tmp_path / "pip.txt").read_text()
    assert "etcd3==0.12.0" in pip and "kubernetes>=29.0" in pip
    assert "molecule" not in pip and "pytest" not in pip and "matplotlib" not in pip
    assert "openssh-clients [platform:rpm]" in (tmp_path / "bindep.txt").read_text()
