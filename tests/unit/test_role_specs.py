"""Every role's meta/argument_specs.yml agrees with its defaults.

- a default given in the spec equals the value in the defaults file (the role's own, or one of its
  meta/main.yml dependencies', such as calico_defaults': Ansible merges those the same way);
- every variable of the role's own defaults file is documented in at least one entry point.

A variable whose default is computed (a Jinja template) is documented without a ``default`` in the
spec; its description says what it defaults to.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
PREFIX = "kubescale.calico."


def _load(path: Path) -> dict:
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def _dependencies(role: str) -> list[str]:
    deps = _load(ROLES / role / "meta" / "main.yml").get("dependencies") or []
    names = [d["role"] if isinstance(d, dict) else d for d in deps]
    return [n.removeprefix(PREFIX) for n in names]


def _defaults(role: str) -> dict:
    """The role's defaults as Ansible merges them: dependencies first, the role's own last."""
    merged: dict = {}
    for dep in _dependencies(role):
        merged.update(_defaults(dep))
    merged.update(_load(ROLES / role / "defaults" / "main.yml"))
    return merged


def _specs(role: str) -> dict:
    return _load(ROLES / role / "meta" / "argument_specs.yml").get("argument_specs") or {}


ROLE_NAMES = sorted(p.parent.parent.name for p in ROLES.glob("*/meta/argument_specs.yml"))


def test_every_role_has_an_argument_spec():
    assert sorted(p.name for p in ROLES.iterdir() if p.is_dir()) == ROLE_NAMES


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_spec_defaults_equal_the_defaults_file(role):
    defaults = _defaults(role)
    wrong = []
    for entry, spec in _specs(role).items():
        for name, option in (spec.get("options") or {}).items():
            if "default" not in option:
                continue
            if name not in defaults:
                wrong.append(f"{entry}.{name}: spec default {option['default']!r}, not in any defaults file")
            elif option["default"] != defaults[name]:
                wrong.append(f"{entry}.{name}: spec default {option['default']!r} != defaults {defaults[name]!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_default_is_documented(role):
    documented = {name for spec in _specs(role).values() for name in (spec.get("options") or {})}
    own = _load(ROLES / role / "defaults" / "main.yml")
    missing = sorted(set(own) - documented)
    assert not missing, f"roles/{role}/defaults/main.yml: not in meta/argument_specs.yml: {missing}"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_literal_defaults_are_shown_in_the_spec(role):
    """A default that is a plain value (no template) is given in the spec, so ansible-doc shows it."""
    own = _load(ROLES / role / "defaults" / "main.yml")
    options = {name: option for spec in _specs(role).values() for name, option in (spec.get("options") or {}).items()}
    missing = sorted(name for name, value in own.items()
                     if name in options and "default" not in options[name] and "{{" not in str(value)
                     and "{%" not in str(value) and value is not None)
    assert not missing, f"roles/{role}: spec gives no default for {missing}"
