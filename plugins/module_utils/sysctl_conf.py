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
