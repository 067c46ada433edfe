# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One sysctl.d file: its content from a mapping, what a write would change, and the write itself.

Runs on the managed hosts (module ``sysctl_file``), so it stays within Python 3.10 and the standard
library. The kernel is told with ``sysctl -e -p <file>`` (keys the kernel lacks are skipped), only
when the file's content changed: ``systemd-sysctl`` applies the same file at boot.
"""

from __future__ import annotations

import os
import re

_KEY = re.compile(r"^[A-Za-z0-9_-]+(?:[./][A-Za-z0-9_*-]+)+$")
_BAD_VALUE = re.compile(r"[\r\n#;]")


class SysctlError(ValueError):
    """A key or value that cannot go into a sysctl.d file."""


def validate(settings: dict) -> dict[str, str]:
    """Keys and values as the file holds them; every problem in one message."""
    if not isinstance(settings, dict) or not settings:
        raise SysctlError("settings: must be a non-empty mapping of sysctl keys to values")
    problems = []
    out = {}
    for key, value in settings.items():
        if not isinstance(key, str) or not _KEY.match(key):
            problems.append(f"{key!r} is not a sysctl key (e.g. net.ipv4.neigh.default.gc_thresh3)")
            continue
        if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
            problems.append(f"{key}: value {value!r} must be a number or a string")
            continue
        text = str(value).strip()
        if not text or _BAD_VALUE.search(text):
            problems.append(f"{key}: value {value!r} must be one line without '#' or ';'")
            continue
        out[key] = text
    if problems:
        raise SysctlError("settings: " + "; ".join(problems))
    return out


def _number(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() else None


def merge(requirements: dict) -> dict[str, str]:
    """One value per key from what several node groups need: the largest number, or the one common
    non-number; different non-numbers are refused, naming the key and who wants what."""
    if not isinstance(requirements, dict) or not requirements:
        raise SysctlError("requirements: must be a non-empty mapping of node group to its settings")
    wanted = {}
    for group, settings in requirements.items():
        if settings:
            wanted[group] = validate(settings)
    if not wanted:
        raise SysctlError("requirements: no node group asks for any setting")
    out: dict[str, str] = {}
    conflicts = []
    for key in sorted({k for settings in wanted.values() for k in settings}):
        values = {group: settings[key] for group, settings in sorted(wanted.items()) if key in settings}
        numbers = [_number(v) for v in values.values()]
        if all(n is not None for n in numbers):
            out[key] = str(max(numbers))
        elif len(set(values.values())) == 1:
            out[key] = next(iter(values.values()))
        else:
            conflicts.append(f"{key} ({', '.join(f'{g}: {v!r}' for g, v in values.items())})")
    if conflicts:
        raise SysctlError("node groups want different values for " + "; ".join(conflicts) + "; make them agree")
    return out


def render(settings: dict[str, str], header: str = "") -> str:
    """The file: the header as comment lines, then ``key = value`` sorted by key."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [f"{key} = {settings[key]}" for key in sorted(settings)]
    return "\n".join(lines) + "\n"


def read(path: str) -> str | None:
    """The file's content, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write(path: str, content: str, tmpdir: str | None = None) -> str:
    """Write ``content`` to a temporary file beside ``path`` (mode 0644); return its name for an atomic move."""
    directory = tmpdir or os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    return tmp
