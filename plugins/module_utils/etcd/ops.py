# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd cluster operations behind etcd_info, etcd_member and etcd_snapshot.

Member IDs are reported as lower-case hex strings, as ``etcdctl`` prints them (64-bit integers
lose precision in JSON consumers). Every check that can refuse an operation runs before any
write, and refusals explain the rule (quorum arithmetic, name clash, last member).
"""

from __future__ import annotations

import fnmatch
import os
import re
import time

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient, EtcdError
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.urls import parse_etcd_url


class EtcdOpsError(Exception):
    """A refused or invalid etcd operation, with a message that names the field or the rule."""


def hex_id(member_id: int) -> str:
    return format(int(member_id), "x")


def quorum(size: int) -> int:
    return size // 2 + 1


def _member(m: dict) -> dict:
    return {"id": hex_id(m["id"]), "name": m["name"], "peer_urls": list(m["peer_urls"]),
            "client_urls": list(m.get("client_urls") or []), "started": bool(m["name"])}


# -- health ----------------------------------------------------------------------------------------
def probe_endpoint(client: EtcdClient, endpoint: str) -> dict:
    """Status and a quorum read of one endpoint; never raises for an unreachable endpoint."""
    report = {"endpoint": endpoint, "reachable": False, "healthy": False, "error": None, "version": None,
              "member_id": None, "name": None, "is_leader": False, "leader": None, "db_size": None,
              "raft_index": None, "raft_term": None, "revision": None, "cluster_id": None}
    one = client.for_endpoint(endpoint)
    try:
        status = one.status()
        report.update(reachable=True, version=status["version"], member_id=hex_id(status["member_id"]),
                      is_leader=status["is_leader"], leader=hex_id(status["leader"]) if status["leader"] else None,
                      db_size=status["db_size"], raft_index=status["raft_index"], raft_term=status["raft_term"],
                      revision=status["revision"], cluster_id=hex_id(status["cluster_id"]))
        try:
            one.get("health")  # linearizable: needs the leader and a quorum, as `etcdctl endpoint health`
        except EtcdError as exc:
            if "permission denied" not in str(exc):
                raise
        report["healthy"] = True
    except EtcdError as exc:
        report["error"] = str(exc)
    finally:
        one.close()
    return report


def member_probe(client: EtcdClient, member: dict) -> tuple[bool, str]:
    """(healthy, reason) of one member, probed on its advertised client URLs."""
    if not member["name"] or not member.get("client_urls"):
        return False, "added but never started (no name or client URLs yet)"
    errors = []
    for url in member["client_urls"]:
        report = probe_endpoint(client, url)
        if report["healthy"]:
            return True, ""
        errors.append(report["error"])
    return False, "; ".join(errors)


def cluster_info(client: EtcdClient, all_members: bool = False) -> dict:
    """Per-endpoint status plus members, leader, alarms and an overall verdict with reasons."""
    problems: list[str] = []
    try:
        members = client.members()
    except EtcdError as exc:
        members = []
        problems.append(f"member list unavailable: {exc}")
    endpoints = list(client.endpoints)
    if all_members:
        endpoints = list(dict.fromkeys(u for m in members for u in m["client_urls"])) or endpoints
    reports = [probe_endpoint(client, e) for e in endpoints]
    names = {hex_id(m["id"]): m["name"] for m in members}
    for report in reports:
        report["name"] = names.get(report["member_id"]) if report["member_id"] else None
        if report["error"] and not any(report["error"] in p for p in problems):
            problems.append(report["error"])
    alarms: list[dict] = []
    try:
        alarms = [{"member_id": hex_id(a["member_id"]), "name": names.get(hex_id(a["member_id"])),
                   "alarm": a["alarm"]} for a in client.alarms()] if members else []
    except EtcdError as exc:
        problems.append(f"alarm list unavailable: {exc}")
    for alarm in alarms:
        problems.append(f"alarm {alarm['alarm']} on member {alarm['name'] or alarm['member_id']}")
        for report in reports:
            if report["member_id"] == alarm["member_id"]:
                report["healthy"] = False
    for report in reports:
        report["alarms"] = [a["alarm"] for a in alarms if a["member_id"] == report["member_id"]]
    leaders = {r["leader"] for r in reports if r["reachable"]}
    leader = next(iter(leaders)) if len(leaders) == 1 else None
    if len(leaders) > 1:
        problems.append(f"endpoints disagree on the leader: {', '.join(sorted(str(x) for x in leaders))}")
    elif reports and any(r["reachable"] for r in reports) and leader is None:
        problems.append("no leader")
    healthy_ids = {r["member_id"] for r in reports if r["healthy"]}
    member_list = []
    for m in members:
        item = _member(m)
        item["is_leader"] = item["id"] == leader
        checked = [r for r in reports if r["member_id"] == item["id"] or r["endpoint"] in item["client_urls"]]
        item["healthy"] = (item["id"] in healthy_ids) if checked else None
        if not item["started"]:
            problems.append(f"member {item['id']} ({', '.join(item['peer_urls'])}) was added but has not started")
        member_list.append(item)
    versions = sorted({r["version"] for r in reports if r["version"]})
    return {
        "changed": False,
        "healthy": not problems,
        "problems": problems,
        "endpoints": reports,
        "members": member_list,
        "member_count": len(members),
        "quorum": quorum(len(members)) if members else None,
        "failures_tolerated": (len(members) - quorum(len(members))) if members else None,
        "healthy_endpoints": sum(1 for r in reports if r["healthy"]),
        "leader": {"id": leader, "name": names.get(leader)} if leader else None,
        "cluster_id": next((r["cluster_id"] for r in reports if r["cluster_id"]), None),
        "version": versions[0] if len(versions) == 1 else versions or None,
        "alarms": alarms,
    }


# -- members ---------------------------------------------------------------------------------------
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def validate_name(name: str | None) -> str | None:
    if name is None:
        return None
    if not _NAME.match(name) or len(name) > 253:
        raise EtcdOpsError(f"name: {name!r} is not a valid member name (letters, digits, '.', '_', '-'; it "
                           "becomes part of --initial-cluster, which cannot hold '=' or ',')")
    return name


def validate_peer_urls(urls: list[str] | None) -> list[str] | None:
    if urls is None:
        return None
    if not urls:
        raise EtcdOpsError("peer_urls: give at least one peer URL")
    clean = []
    for url in urls:
        try:
            clean.append(str(parse_etcd_url(url)))
        except ValueError as exc:
            raise EtcdOpsError(f"peer_urls: {exc}") from None
    if len(set(clean)) != len(clean):
        raise EtcdOpsError("peer_urls: the same URL is listed twice")
    return clean


def _describe(m: dict) -> str:
    return f"{m['name'] or '(unstarted)'} (id {hex_id(m['id'])}, {', '.join(m['peer_urls'])})"


def initial_cluster(others: list[dict], name: str, peer_urls: list[str]) -> str:
    """``--initial-cluster`` for a joining member: the other members' name=peerURL, then its own."""
    pairs = [f"{m['name']}={u}" for m in others for u in m["peer_urls"]]
    return ",".join(pairs + [f"{name}={u}" for u in peer_urls])


def _cluster_text(members: list[dict]) -> str:
    return "".join(f"{m['name'] or '(unstarted)'}={','.join(m['peer_urls'])}\n"
                   for m in sorted(members, key=lambda m: (m["name"], m["peer_urls"])))


def _even_warning(count: int) -> list[str]:
    if count and count % 2 == 0:
        return [f"the cluster now has {count} members, an even count: it tolerates {count - quorum(count)} "
                f"failure(s), no more than {count - 1} members would, yet needs {quorum(count)} for quorum; "
                "aim for an odd number of members"]
    return []


def _unhealthy(client: EtcdClient, members: list[dict]) -> list[str]:
    bad = []
    for m in members:
        ok, reason = member_probe(client, m)
        if not ok:
            bad.append(f"{_describe(m)}: {reason}")
    return bad


def ensure_member(client: EtcdClient, state: str, name: str | None, peer_urls: list[str] | None,
                  check_mode: bool, quorum_check: bool = True) -> dict:
    """Add (state=present) or remove (state=absent) one member; see the etcd_member module."""
    name = validate_name(name)
    peer_urls = validate_peer_urls(peer_urls)
    if state == "present" and (not name or not peer_urls):
        raise EtcdOpsError("state=present needs both name and peer_urls")
    if state == "absent" and not name and not peer_urls:
        raise EtcdOpsError("state=absent needs name or peer_urls to find the member")
    members = client.members()
    if state == "present":
        return _add(client, members, name, peer_urls, check_mode, quorum_check)
    return _remove(client, members, name, peer_urls, check_mode, quorum_check)


def _present_result(members: list[dict], new: dict, changed: bool, actions: list[str], before: str) -> dict:
    """Result of state=present; ``new`` is the member as it is or will be (id None in check mode)."""
    others = [m for m in members if new["id"] is None or m["id"] != new["id"]]
    listed = [_member(m) for m in others]
    listed.append({"id": hex_id(new["id"]) if new["id"] is not None else None, "name": new["name"],
                   "peer_urls": new["peer_urls"], "client_urls": new.get("client_urls", []),
                   "started": new["started"]})
    return {
        "changed": changed,
        "member": {k: listed[-1][k] for k in ("id", "name", "peer_urls", "started")},
        "initial_cluster": initial_cluster(others, new["name"], new["peer_urls"]),
        "initial_cluster_state": "existing",
        "members": listed,
        "member_count": len(listed),
        "actions": actions,
        "warnings": _even_warning(len(listed)) if changed else [],
        "diff": {"before": before, "after": _cluster_text([*others, new])},
    }


def _add(client, members, name, peer_urls, check_mode, quorum_check) -> dict:
    before = _cluster_text(members)
    wanted = set(peer_urls)
    holders = [m for m in members if wanted & set(m["peer_urls"])]
    if len(holders) > 1:
        raise EtcdOpsError(f"peer_urls: the URLs belong to several members: {'; '.join(map(_describe, holders))}")
    if holders:
        m = holders[0]
        if set(m["peer_urls"]) != wanted:
            raise EtcdOpsError(f"peer_urls: member {_describe(m)} holds some of these URLs but not exactly "
                               f"these; changing a member's peer URLs is not supported here (remove and add)")
        if m["name"] not in ("", name):
            raise EtcdOpsError(f"peer_urls: {', '.join(peer_urls)} already belong to member {_describe(m)}, "
                               f"not {name!r}")
        new = dict(m, name=name, peer_urls=list(m["peer_urls"]), started=bool(m["name"]))
        return _present_result(members, new, False, [], before)
    clash = [m for m in members if m["name"] == name]
    if clash:
        raise EtcdOpsError(f"name: member {_describe(clash[0])} already exists with other peer URLs; a name may "
                           f"be used once. To replace that host, remove it first (state=absent), then add "
                           f"{name} with peer_urls {', '.join(peer_urls)}")
    unstarted = [m for m in members if not m["name"]]
    if unstarted:
        raise EtcdOpsError(f"member {_describe(unstarted[0])} was added but never started; start it or "
                           "remove it before adding another (etcd adds one member at a time)")
    if quorum_check:
        bad = _unhealthy(client, members)
        if bad:
            size = len(members) + 1
            raise EtcdOpsError(
                f"cannot add {name}: not every current member is healthy ({'; '.join(bad)}). With {size} members "
                f"the cluster needs {quorum(size)} for quorum and the new member does not count until it has "
                f"started, and etcd refuses to add a member while any member is disconnected. To replace a dead "
                f"host, remove it first (state=absent), then add the new member")
    actions = [f"added member {name} ({', '.join(peer_urls)}); start it with --initial-cluster-state existing"]
    new = {"id": None, "name": name, "peer_urls": peer_urls, "client_urls": [], "started": False}
    if check_mode:
        return _present_result(members, new, True, actions, before)
    added = _reconfigure(lambda: client.member_add(peer_urls))
    urls = {m["id"]: m["client_urls"] for m in members}
    after = [dict(m, client_urls=urls.get(m["id"], [])) for m in added["members"]]
    return _present_result(after, dict(new, id=added["id"]), True, actions, before)


def _reconfigure(change, patience: float = 20.0):
    """Run a membership change, waiting out etcd's "unhealthy cluster" refusal.

    etcd (strict reconfig check) refuses a change until every member has been connected for its
    health interval (5 s), e.g. right after a member restarted; that passes by itself.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            return change()
        except EtcdError as exc:
            if "unhealthy cluster" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _remove(client, members, name, peer_urls, check_mode, quorum_check) -> dict:
    before = _cluster_text(members)
    by_name = [m for m in members if name and m["name"] == name]
    by_url = [m for m in members if peer_urls and set(peer_urls) & set(m["peer_urls"])]
    if len(by_name) > 1:
        raise EtcdOpsError(f"name: several members are named {name!r}: {'; '.join(map(_describe, by_name))}; "
                           "give peer_urls to pick one")
    if name and peer_urls and by_name and by_url and by_name[0]["id"] != by_url[0]["id"]:
        raise EtcdOpsError(f"name and peer_urls point at different members: {_describe(by_name[0])} and "
                           f"{_describe(by_url[0])}")
    if len(by_url) > 1:
        raise EtcdOpsError(f"peer_urls: the URLs belong to several members: {'; '.join(map(_describe, by_url))}")
    if name and peer_urls and bool(by_name) != bool(by_url):
        found = (by_name or by_url)[0]
        raise EtcdOpsError(f"name and peer_urls do not describe the same member: found {_describe(found)}")
    target = (by_name or by_url or [None])[0]
    result = {"changed": False, "member": None, "actions": [], "warnings": [],
              "members": [_member(m) for m in members], "member_count": len(members),
              "diff": {"before": before, "after": before}}
    if target is None:
        return result
    if len(members) == 1:
        raise EtcdOpsError(f"refusing to remove {_describe(target)}: it is the last member; removing it would "
                           "destroy the cluster (stop the service and delete its data instead)")
    remaining = [m for m in members if m["id"] != target["id"]]
    if quorum_check:
        bad = _unhealthy(client, remaining)
        healthy = len(remaining) - len(bad)
        need = quorum(len(remaining))
        if healthy < need:
            raise EtcdOpsError(
                f"refusing to remove {_describe(target)}: the {len(remaining)} remaining members need {need} "
                f"healthy for quorum but only {healthy} are ({'; '.join(bad)}); the cluster would stop serving. "
                "Bring the unhealthy members back first, or remove an unhealthy member instead")
    result.update(changed=True, member=_member(target), members=[_member(m) for m in remaining],
                  member_count=len(remaining), actions=[f"removed member {_describe(target)}"],
                  warnings=_even_warning(len(remaining)), diff={"before": before, "after": _cluster_text(remaining)})
    if not check_mode:
        _reconfigure(lambda: client.member_remove(target["id"]))
    return result


# -- snapshots -------------------------------------------------------------------------------------
def _validate_snapshot(path: str, retain: int | None, pattern: str | None) -> str:
    if not path:
        raise EtcdOpsError("path: a file path is required")
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise EtcdOpsError(f"path: the parent directory {parent} does not exist (create it first)")
    if os.path.isdir(path):
        raise EtcdOpsError(f"path: {path} is a directory; give the snapshot's file name")
    if not os.access(parent, os.W_OK):
        raise EtcdOpsError(f"path: the directory {parent} is not writable")
    if retain is not None and retain < 1:
        raise EtcdOpsError(f"retain: must be at least 1 (the new snapshot counts), got {retain}")
    if (retain is None) != (pattern is None):
        raise EtcdOpsError("retain and retain_pattern must be given together")
    if pattern is not None:
        if "/" in pattern or not pattern:
            raise EtcdOpsError(f"retain_pattern: {pattern!r} must be a file-name glob without '/'")
        if not fnmatch.fnmatchcase(os.path.basename(path), pattern):
            raise EtcdOpsError(f"retain_pattern: {pattern!r} does not match the snapshot's own name "
                               f"{os.path.basename(path)!r}, so retention would never count it")
    return path


def _retention(path: str, retain: int, pattern: str) -> tuple[list[str], list[str]]:
    """(kept, removed): the ``retain`` newest files matching ``pattern`` beside ``path``, ``path`` first."""
    parent = os.path.dirname(path)
    others = []
    for entry in os.scandir(parent):
        full = os.path.join(parent, entry.name)
        if full != path and entry.is_file(follow_symlinks=False) and fnmatch.fnmatchcase(entry.name, pattern):
            others.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name, full))
    others.sort(reverse=True)
    ordered = [path] + [entry[2] for entry in others]
    return ordered[:retain], ordered[retain:]


def save_snapshot(client: EtcdClient, path: str, check_mode: bool, retain: int | None = None,
                  retain_pattern: str | None = None, snapshot_timeout: float | None = None) -> dict:
    """Save a snapshot to ``path`` (0600), then keep the ``retain`` newest matching files."""
    path = _validate_snapshot(path, retain, retain_pattern)
    result: dict = {"changed": True, "path": path, "mode": "0600", "removed": [], "retained": [path]}
    if check_mode:
        status = client.status()
        result.update(size=None, sha256=None, endpoint=status["endpoint"], member_id=hex_id(status["member_id"]),
                      revision=status["revision"], actions=[f"would save a snapshot of {status['endpoint']} "
                                                            f"to {path}"])
    else:
        try:
            saved = client.snapshot(path, timeout=snapshot_timeout)
        except EtcdError as exc:
            if "permission denied" in str(exc):
                raise EtcdOpsError(f"{exc.args[0].split(': ')[0]}: permission denied: with auth enabled etcd "
                                   "allows snapshots only to a user with the root role") from None
            raise
        result.update(size=saved["size"], sha256=saved["sha256"], endpoint=saved["endpoint"],
                      member_id=hex_id(saved["member_id"]), revision=saved["revision"],
                      actions=[f"saved a snapshot of {saved['endpoint']} at revision {saved['revision']} to {path}"])
    if retain is not None:
        kept, removed = _retention(path, retain, retain_pattern)
        result.update(retained=kept, removed=removed)
        for old in removed:
            if not check_mode:
                try:
                    os.unlink(old)
                except OSError as exc:
                    raise EtcdOpsError(f"retain: cannot remove old snapshot {old} ({exc.strerror})") from None
            result["actions"].append(f"{'would remove' if check_mode else 'removed'} old snapshot {old}")
    return result
