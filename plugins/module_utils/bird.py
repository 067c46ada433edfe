# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for BIRD's control socket (BIRD 1.6, Calico's fork of it, and BIRD 2).

BIRD answers each command on its Unix socket with lines ``CODE-text`` (more follows),
`` text`` (continuation, same code) and a last line ``CODE text``. Codes 0xxx close a
successful reply, 8xxx/9xxx are errors. This module speaks that protocol without ``birdc``
and parses ``show status``, ``show protocols all`` and ``show route count`` into plain dicts.
Errors are raised as :class:`BirdError` with a message naming the socket path.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import socket
import stat

DEFAULT_SOCKETS = ("/var/run/calico/bird.ctl", "/run/bird/bird.ctl")

_LINE = re.compile(r"^(\d{4})([ -])(.*)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?$")
_COUNT = re.compile(r"(\d+) of (\d+) routes for (\d+) networks(?: in table (\S+))?")
_ROUTES = re.compile(r"(\d+) (imported|filtered|exported|preferred)")


class BirdError(Exception):
    """Talking to BIRD failed; the message names the socket and the cause."""


def find_socket(candidates: tuple[str, ...] | list[str] = DEFAULT_SOCKETS) -> str:
    """Return the first candidate path that exists (the first candidate if none does)."""
    for path in candidates:
        if os.path.exists(path):
            return path
    return candidates[0]


def split_lines(raw: str) -> list[tuple[int, str]]:
    """Turn raw reply text into ``(code, text)`` pairs; continuation lines inherit the code."""
    out: list[tuple[int, str]] = []
    code = 0
    for line in raw.splitlines():
        match = _LINE.match(line)
        if match:
            code = int(match.group(1))
            out.append((code, match.group(3)))
        elif line.startswith(" "):
            out.append((code, line[1:]))
        elif line:
            raise BirdError(f"unexpected line in BIRD reply: {line!r}")
    return out


class BirdClient:
    """One connection to a BIRD control socket."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        _check_socket(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(path)
        except OSError as exc:
            self._sock.close()
            raise BirdError(f"cannot connect to BIRD control socket {path}: {exc.strerror or exc}") from exc
        self._file = self._sock.makefile("rb")
        hello = self._read_reply()
        self.banner = hello[-1][1] if hello else ""

    def __enter__(self) -> BirdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if hasattr(self, "_file"):
            self._file.close()
        self._sock.close()

    def command(self, cmd: str) -> list[tuple[int, str]]:
        """Send one command and return its reply lines; raise BirdError on an error reply."""
        if "\n" in cmd:
            raise BirdError(f"BIRD command must be one line: {cmd!r}")
        try:
            self._sock.sendall(cmd.encode() + b"\n")
        except OSError as exc:
            raise BirdError(f"BIRD control socket {self.path}: sending {cmd!r} failed: {exc}") from exc
        reply = self._read_reply()
        code, text = reply[-1]
        if code >= 8000:
            raise BirdError(f"BIRD at {self.path} refused {cmd!r}: {code} {text.strip()}")
        return reply

    def _readline(self) -> str:
        try:
            line = self._file.readline()
        except TimeoutError as exc:
            raise BirdError(f"BIRD control socket {self.path}: no answer (timeout)") from exc
        except OSError as exc:
            raise BirdError(f"BIRD control socket {self.path}: read failed: {exc}") from exc
        if not line.endswith(b"\n"):
            raise BirdError(f"BIRD control socket {self.path}: connection closed by BIRD")
        return line[:-1].decode("utf-8", "replace")

    def _read_reply(self) -> list[tuple[int, str]]:
        lines: list[str] = []
        while True:
            line = self._readline()
            lines.append(line)
            match = _LINE.match(line)
            if match and match.group(2) == " ":
                return split_lines("\n".join(lines))

    def status(self) -> dict:
        return parse_status(self.command("show status"))

    def protocols(self) -> list[dict]:
        return parse_protocols(self.command("show protocols all"))

    def route_count(self) -> dict:
        return parse_route_count(self.command("show route count"))

    def prefixes(self) -> set[str]:
        """The prefixes of BIRD's table that have a primary (best) route."""
        return parse_prefixes(self.command("show route primary"))

    def configure(self, check_only: bool = False) -> str:
        """Reload (or only check) the config BIRD was started with; return BIRD's last line."""
        return self.command("configure check" if check_only else "configure")[-1][1]


def _check_socket(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as exc:
        raise BirdError(f"BIRD control socket {path} does not exist (is BIRD running?)") from exc
    except PermissionError as exc:
        raise BirdError(f"BIRD control socket {path} is not readable: permission denied") from exc
    if not stat.S_ISSOCK(mode):
        raise BirdError(f"{path} is not a Unix socket (expected BIRD's control socket)")
    if not os.access(path, os.R_OK | os.W_OK):
        raise BirdError(f"BIRD control socket {path} is not readable/writable by this user")


def parse_status(lines: list[tuple[int, str]]) -> dict:
    """Parse ``show status`` into version, router id and the daemon's times."""
    out: dict = {"version": None, "router_id": None, "server_time": None,
                 "last_reboot": None, "last_reconfiguration": None, "message": None}
    for code, text in lines:
        text = text.strip()
        if code == 1000:
            out["version"] = text.removeprefix("BIRD ").strip()
        elif text.startswith("Router ID is "):
            out["router_id"] = text.removeprefix("Router ID is ")
        elif text.startswith("Current server time is "):
            out["server_time"] = text.removeprefix("Current server time is ")
        elif text.startswith("Last reboot on "):
            out["last_reboot"] = text.removeprefix("Last reboot on ")
        elif text.startswith("Last reconfiguration on "):
            out["last_reconfiguration"] = text.removeprefix("Last reconfiguration on ")
        elif code == 13:
            out["message"] = text
    return out


def _split_row(text: str) -> dict:
    """Split a protocol table row: name proto table state since [info]."""
    parts = text.split()
    if len(parts) < 4:
        raise BirdError(f"unexpected protocol row from BIRD: {text!r}")
    name, proto, table, state = parts[:4]
    rest = parts[4:]
    since = rest.pop(0) if rest else ""
    if rest and _DATE.match(since) and _TIME.match(rest[0]):
        since = f"{since} {rest.pop(0)}"
    return {"name": name, "proto": proto, "table": table, "state": state,
            "since": since, "info": " ".join(rest)}


def parse_protocols(lines: list[tuple[int, str]]) -> list[dict]:
    """Parse ``show protocols [all]`` into one dict per protocol.

    BGP details (``all``) add neighbor address/AS/ID, session kind, last error and route
    counts: BIRD 2 per channel (summed into ``routes_*``), BIRD 1.6 from its ``Routes:`` line.
    """
    protocols: list[dict] = []
    current: dict | None = None
    channel: str | None = None
    for code, text in lines:
        if code == 1002:
            current = _split_row(text)
            current["channels"] = {}
            protocols.append(current)
            channel = None
        elif code == 1006 and current is not None:
            stripped = text.strip()
            if stripped.startswith("Channel "):
                channel = stripped.split()[1]
                current["channels"][channel] = {}
                continue
            key, sep, value = stripped.partition(":")
            if not sep:
                continue
            key, value = key.strip(), value.strip()
            if key == "Routes":
                counts = {f"routes_{kind}": int(num) for num, kind in _ROUTES.findall(value)}
                current["channels"].setdefault(channel or "default", {}).update(counts)
            elif channel is not None and key in ("State", "Table"):
                current["channels"][channel][key.lower()] = value
            elif key in ("BGP state", "Neighbor address", "Neighbor AS", "Local AS",
                         "Neighbor ID", "Last error", "Session", "Source address"):
                current[key.lower().replace(" ", "_")] = value
    for proto in protocols:
        for kind in ("imported", "exported", "preferred", "filtered"):
            proto[f"routes_{kind}"] = sum(ch.get(f"routes_{kind}", 0) for ch in proto["channels"].values())
    return protocols


def parse_route_count(lines: list[tuple[int, str]]) -> dict:
    """Parse ``show route count``: totals over all tables plus per-table figures."""
    tables: dict[str, dict] = {}
    for _code, text in lines:
        match = _COUNT.search(text)
        if not match or text.strip().startswith("Total"):
            continue
        name = match.group(4) or "master"
        tables[name] = {"routes": int(match.group(2)), "networks": int(match.group(3))}
    return {"routes": sum(t["routes"] for t in tables.values()),
            "networks": sum(t["networks"] for t in tables.values()), "tables": tables}


def parse_prefixes(lines: list[tuple[int, str]]) -> set[str]:
    """Prefixes of ``show route`` (BIRD 2: a 1007 line per network; 1.6: per route, network first)."""
    out = set()
    for code, text in lines:
        if code == 1007 and text[:1].isalnum() and "/" in text.split(maxsplit=1)[0]:
            out.add(text.split(maxsplit=1)[0])
    return out


def _parse_time(value: str, reference: _dt.datetime | None) -> _dt.datetime | None:
    """Parse BIRD's time formats: ISO date-time, or time-of-day relative to ``reference``."""
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return _dt.datetime.strptime(value, fmt)
        except ValueError:
            pass
    if reference is not None and _TIME.match(value):
        fmt = "%H:%M:%S.%f" if "." in value else "%H:%M:%S"
        tod = _dt.datetime.strptime(value, fmt).time()
        moment = _dt.datetime.combine(reference.date(), tod)
        if moment > reference + _dt.timedelta(seconds=1):  # shown without date: it was yesterday
            moment -= _dt.timedelta(days=1)
        return moment
    return None


def session_view(proto: dict, server_time: str | None) -> dict:
    """The public form of one BGP protocol (what ``bgp_status`` returns per session)."""
    reference = _parse_time(server_time, None) if server_time else None
    since = _parse_time(proto["since"], reference) if proto["since"] else None
    bgp_state = proto.get("bgp_state") or (proto["info"].split()[0] if proto["info"] else proto["state"])
    uptime = None
    if since is not None and reference is not None and bgp_state == "Established":
        uptime = round((reference - since).total_seconds(), 3)
    return {
        "name": proto["name"],
        "peer_ip": proto.get("neighbor_address"),
        "peer_as": int(proto["neighbor_as"]) if proto.get("neighbor_as", "").isdigit() else None,
        "peer_router_id": proto.get("neighbor_id"),
        "state": bgp_state,
        "protocol_state": proto["state"],
        "established": bgp_state == "Established",
        "since": proto["since"],
        "uptime_seconds": uptime,
        "info": proto["info"],
        "session": proto.get("session"),
        "rr_client": "route-reflector" in (proto.get("session") or ""),
        "last_error": proto.get("last_error"),
        "routes_imported": proto["routes_imported"],
        "routes_exported": proto["routes_exported"],
        "routes_preferred": proto["routes_preferred"],
        "channels": proto["channels"],
    }


def bgp_status(path: str, timeout: float = 10.0, expect_routes: list[str] | None = None) -> dict:
    """Read status and BGP sessions from the BIRD listening on ``path``.

    With ``expect_routes`` (prefixes), also which of them BIRD's table lacks (``routes_missing``).
    """
    with BirdClient(path, timeout) as client:
        status = client.status()
        protocols = client.protocols()
        table = client.prefixes() if expect_routes else set()
    sessions = [session_view(p, status["server_time"]) for p in protocols if p["proto"] == "BGP"]
    down = [s["name"] for s in sessions if not s["established"]]
    return {
        "socket": path,
        "version": status["version"],
        "router_id": status["router_id"],
        "server_time": status["server_time"],
        "last_reboot": status["last_reboot"],
        "last_reconfiguration": status["last_reconfiguration"],
        "sessions": sessions,
        "sessions_total": len(sessions),
        "sessions_established": len(sessions) - len(down),
        "not_established": down,
        "found": True,
        "routes_missing": [p for p in expect_routes or [] if p not in table],
    }


def not_running() -> dict:
    """The answer when no candidate socket exists and that is allowed: no daemon, no sessions."""
    return {"socket": None, "found": False, "version": None, "router_id": None,
            "server_time": None, "last_reboot": None, "last_reconfiguration": None, "sessions": [],
            "sessions_total": 0, "sessions_established": 0, "not_established": [], "routes_missing": []}
