# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BGP topology planner: full mesh or route reflectors, chosen from the inventory.

Pure code, no I/O. ``plan_topology(groups, hostvars, settings)`` returns a plain,
JSON-serialisable dict that explains itself (mode, reason, warnings, statistics) and carries the
Calico v3 objects (BGPConfiguration, Nodes, BGPPeers) that ``bgp_topology`` applies.

How reflectors are chosen (docs/topology.md has the long form):

* the Calico nodes are the hosts of the node groups master, management, proxy, worker (plus, for
  in-cluster reflectors, the ``route_reflectors`` group);
* the number of reflector clusters K is the smallest that keeps every reflector at or under
  ``rr_capacity`` clients; each cluster has ``rr_per_client`` reflectors sharing one cluster ID
  (``rr_cluster_id_base`` + cluster index) and every client peers with all reflectors of its cluster;
* candidates are the ``route_reflectors`` group if it has hosts, else ``rr_candidate_groups``
  (default management, then master: few, long-lived hosts that are not scaled with the workload);
* clusters are filled one after another; each slot takes, among free candidates, one in a zone and
  rack the cluster does not use yet, from the failure domain with most free candidates, ties broken
  by rendezvous hashing of (cluster ID, host name). Cluster k's reflectors therefore never depend on
  workers nor on clusters after k: adding a worker never moves a reflector nor its cluster ID;
* clients are assigned rack by rack (host by host when racks are absent or a rack does not fit) to
  the cluster with the most room left (ties broken by rendezvous hashing);
* ``previous`` (a plan or ``{host: cluster_id}``) keeps reflectors where they are, so that removing
  a reflector host replaces only that host and moves only its clients.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import (
    API_VERSION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.inventory import (
    DEFAULTS,
    LABEL_GROUP,
    LABEL_RACK,
    LABEL_RR,
    LABEL_RR_CLIENT_OF,
    LABEL_RR_CLUSTER,
    LABEL_ZONE,
    NODE_GROUPS,
    PEER_PREFIX,
    RR_GROUP,
    TopologyError,
    as_cluster_id,
    cluster_ids,
    group_members,
    ip_name,
    normalise_settings,
    read_hosts,
    rendezvous_score,
)


def _cluster_count(n_nodes: int, settings: dict, in_cluster: bool) -> int:
    cap, per = settings["rr_capacity"], settings["rr_per_client"]
    k = 1
    while (n_nodes - k * per if in_cluster else n_nodes) > k * cap:
        k += 1
    return k


def _candidates(groups: Mapping, nodes: dict, external: dict, settings: dict) -> tuple[list[str], dict[str, int]]:
    """Candidate hosts and their tier (lower is preferred)."""
    if external or settings["rr_kind"] == "external":
        return sorted(external), {h: 0 for h in external}
    rr_hosts = group_members(groups, RR_GROUP)
    if rr_hosts:
        return sorted(set(rr_hosts)), {h: 0 for h in rr_hosts}
    tiers: dict[str, int] = {}
    for tier, group in enumerate(settings["rr_candidate_groups"]):
        for host in group_members(groups, group):
            if host in nodes:
                tiers.setdefault(host, tier)
    return sorted(tiers), tiers


def _previous_assignments(previous) -> tuple[dict[str, str], dict[str, str]]:
    """(reflectors, clients) as {host: cluster_id} from a previous plan or a {host: cluster_id} map."""
    if not previous:
        return {}, {}
    if isinstance(previous, Mapping) and "reflectors" in previous:
        reflectors = {str(r.get("host", r["name"])): str(r["cluster_id"]) for r in previous["reflectors"]}
        clients = {
            str(n.get("host", n["name"])): str(n["cluster_id"])
            for n in previous.get("nodes", [])
            if n.get("cluster_id") and not n.get("route_reflector")
        }
        return reflectors, clients
    if isinstance(previous, Mapping):
        return {str(k): str(v) for k, v in previous.items()}, {}
    raise TopologyError("previous: must be a plan or a mapping of host name to cluster ID")


def _domain(info: dict) -> tuple:
    return (info["zone"], info["rack"])


def _feasible(domain_free: dict[tuple, int], clusters: int, per: int) -> bool:
    """Can ``clusters`` empty clusters of ``per`` reflectors each still span two failure domains?"""
    if clusters == 0:
        return True
    return sum(min(c, clusters * (per - 1)) for c in domain_free.values()) >= clusters * per


def _choose_reflectors(
    cids: list[str], candidates: list[str], tiers: dict[str, int], infos: dict, per: int, keep: dict[str, str]
) -> dict[str, list[str]]:
    """Fill ``per`` slots for each cluster in order; returns {cluster_id: [hosts]}.

    A slot prefers a zone, then a rack, the cluster does not use yet, then the preferred candidate
    groups, then the failure domain with most free candidates, then the rendezvous score of
    (cluster ID, host). A pick that would leave the later clusters unable to span two failure
    domains is passed over when another pick keeps them able to.
    """
    chosen: dict[str, list[str]] = {cid: [] for cid in cids}
    free = set(candidates)
    for host in sorted(keep):
        cid = keep[host]
        if host in free and cid in chosen and len(chosen[cid]) < per:
            chosen[cid].append(host)
            free.discard(host)
    domain_free: dict[tuple, int] = {}
    for host in free:
        domain_free[_domain(infos[host])] = domain_free.get(_domain(infos[host]), 0) + 1
    for index, cid in enumerate(cids):
        later = sum(1 for c in cids[index + 1 :] if not chosen[c])
        while len(chosen[cid]) < per and free:
            zones = {infos[h]["zone"] for h in chosen[cid]}
            domains = {_domain(infos[h]) for h in chosen[cid]}

            def rank(host: str, zones=zones, domains=domains, cid=cid) -> tuple:
                info = infos[host]
                dom = _domain(info)
                return (
                    info["zone"] not in zones,
                    dom not in domains,
                    -tiers.get(host, 0),
                    domain_free[dom],
                    rendezvous_score(cid, host),
                )

            ordered = sorted(free, key=rank, reverse=True)
            best = ordered[0]
            if later and _feasible(domain_free, later, per):
                for host in ordered:
                    dom = _domain(infos[host])
                    domain_free[dom] -= 1
                    ok = _feasible(domain_free, later, per)
                    domain_free[dom] += 1
                    if ok:
                        best = host
                        break
            chosen[cid].append(best)
            free.discard(best)
            domain_free[_domain(infos[best])] -= 1
    return chosen


def _spread_clusters(chosen: dict[str, list[str]], infos: dict) -> list[str]:
    """Cluster IDs whose reflectors sit in fewer than two failure domains (zone, rack)."""
    return [cid for cid, hosts in chosen.items() if len({_domain(infos[h]) for h in hosts}) < 2]


def _pick_reflectors(
    cids: list[str], candidates: list[str], tiers: dict[str, int], infos: dict, per: int, keep: dict[str, str]
) -> dict[str, list[str]]:
    """Reflectors from the preferred candidate groups only, unless later groups are needed.

    Pools grow one group (tier) at a time: the first pool that fills every slot with every cluster
    in two failure domains wins; else the pool that fills every slot with the most clusters spread
    (earliest on ties). So workers (a late group) serve only when the groups before them cannot
    give the count or the spread, and adding a worker moves no reflector chosen from earlier groups.
    """
    best: tuple[int, dict] | None = None
    for top in sorted(set(tiers.values())):
        pool = [h for h in candidates if tiers.get(h, 0) <= top or h in keep]
        if len(pool) < len(cids) * per:
            continue
        chosen = _choose_reflectors(cids, pool, tiers, infos, per, keep)
        unspread = len(_spread_clusters(chosen, infos))
        if unspread == 0:
            return chosen
        if best is None or unspread < best[0]:
            best = (unspread, chosen)
    if best is None:  # not reached: the caller checked len(candidates) >= clusters * per
        raise TopologyError("calico_rr_candidate_groups: not enough reflector candidates")
    return best[1]


def _spread_report(chosen: dict[str, list[str]], infos: dict, settings: dict, warnings: list[str]) -> dict:
    """Failure-domain spread of the reflectors: warnings, and an error under rr_require_spread."""
    hosts = [h for members in chosen.values() for h in members]
    known = any(infos[h]["zone"] or infos[h]["rack"] for h in hosts)
    unspread = _spread_clusters(chosen, infos)
    problems = []
    if not known:
        problems.append(
            "no reflector has calico_rack or calico_zone: failure domains are unknown, so the reflectors "
            "cannot be spread over them"
        )
    else:
        for cid in unspread:
            members = chosen[cid]
            zone, rack = _domain(infos[members[0]])
            where = f"rack {rack}" if rack else f"zone {zone}"
            where = where if len(members) > 1 else "one host"
            problems.append(
                f"reflector cluster {cid} has all its reflectors in {where} ({', '.join(sorted(members))}): "
                "losing it leaves its clients without routes; no candidate of calico_rr_candidate_groups "
                f"({', '.join(settings['rr_candidate_groups'])}) in another failure domain is free"
            )
    if problems and settings["rr_require_spread"]:
        raise TopologyError(f"calico_rr_require_spread: {problems[0]}")
    warnings.extend(problems)
    return {"failure_domains_known": known, "clusters_in_one_domain": unspread, "ok": not problems}


def _assign_clients(clients: list[dict], cids: list[str], capacity: int, keep: dict[str, str]) -> dict[str, str]:
    """{host: cluster_id}: kept assignments first, then whole racks where they fit, else host by
    host, each to the cluster with most room left (ties by rendezvous score); never over capacity."""
    room = {cid: capacity for cid in cids}
    out: dict[str, str] = {}
    for info in clients:
        cid = keep.get(info["host"])
        if cid in room and room[cid] > 0:
            out[info["host"]] = cid
            room[cid] -= 1
    units: dict[str, list[str]] = {}
    for info in clients:
        if info["host"] in out:
            continue
        unit = f"rack:{info['zone'] or ''}/{info['rack']}" if info["rack"] else f"host:{info['host']}"
        units.setdefault(unit, []).append(info["host"])
    for unit in sorted(units):
        hosts = sorted(units[unit])
        fits = [c for c in cids if room[c] >= len(hosts)]
        if fits:
            target = max(fits, key=lambda c, u=unit: (room[c], rendezvous_score(u, c)))
            for host in hosts:
                out[host] = target
            room[target] -= len(hosts)
            continue
        for host in hosts:
            target = max(cids, key=lambda c, h=host: (room[c], rendezvous_score(h, c)))
            if room[target] <= 0:  # cannot happen: K is chosen so that K * capacity >= clients
                raise TopologyError("calico_rr_capacity: not enough reflector capacity for every client")
            out[host] = target
            room[target] -= 1
    return out


# --------------------------------------------------------------------------------------------
# resources


def _meta(name: str, labels: dict | None = None) -> dict:
    all_labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}
    all_labels.update(labels or {})
    return {"name": name, "labels": all_labels}


def _bgp_configuration(mesh: bool, as_number: int) -> dict:
    return {
        "kind": "BGPConfiguration",
        "apiVersion": API_VERSION,
        "metadata": _meta("default"),
        "spec": {"nodeToNodeMeshEnabled": mesh, "asNumber": as_number},
    }


def _node_resource(node: dict, info: dict, global_as: int) -> dict:
    labels = {LABEL_GROUP: node["group"].replace("_", "-")}
    if node["rack"]:
        labels[LABEL_RACK] = node["rack"]
    if node["zone"]:
        labels[LABEL_ZONE] = node["zone"]
    bgp: dict = {"ipv4Address": f"{node['ip']}/{info['prefix']}"}
    if node["as_number"] != global_as:
        bgp["asNumber"] = node["as_number"]
    if node["route_reflector"]:
        labels[LABEL_RR] = "true"
        labels[LABEL_RR_CLUSTER] = node["cluster_id"]
        bgp["routeReflectorClusterID"] = node["cluster_id"]
    elif node["cluster_id"]:
        labels[LABEL_RR_CLIENT_OF] = node["cluster_id"]
    return {"kind": "Node", "apiVersion": API_VERSION, "metadata": _meta(node["name"], labels), "spec": {"bgp": bgp}}


def _peer(name: str, spec: dict, labels: dict | None = None) -> dict:
    return {"kind": "BGPPeer", "apiVersion": API_VERSION, "metadata": _meta(name, labels), "spec": spec}


def _reflector_peers(reflectors: list[dict], kind: str, as_number: int) -> list[dict]:
    peers = []
    if kind == "in_cluster":
        peers.append(
            _peer(f"{PEER_PREFIX}rr-mesh", {"nodeSelector": f"has({LABEL_RR})", "peerSelector": f"has({LABEL_RR})"})
        )
        if reflectors:
            peers.append(
                _peer(
                    f"{PEER_PREFIX}rr-default",
                    {
                        "nodeSelector": f"!has({LABEL_RR}) && !has({LABEL_RR_CLIENT_OF})",
                        "peerSelector": f"{LABEL_RR_CLUSTER} == '{reflectors[0]['cluster_id']}'",
                    },
                )
            )
        for cid in sorted({r["cluster_id"] for r in reflectors}):
            peers.append(
                _peer(
                    f"{PEER_PREFIX}rr-clients-{ip_name(cid)}",
                    {
                        "nodeSelector": f"{LABEL_RR_CLIENT_OF} == '{cid}'",
                        "peerSelector": f"{LABEL_RR_CLUSTER} == '{cid}'",
                    },
                )
            )
        return peers
    for r in reflectors:
        peers.append(
            _peer(
                f"{PEER_PREFIX}rr-{ip_name(r['cluster_id'])}-{ip_name(r['ip'])}",
                {
                    "nodeSelector": f"{LABEL_RR_CLIENT_OF} == '{r['cluster_id']}'",
                    "peerIP": r["ip"],
                    "asNumber": as_number,
                },
            )
        )
    return peers


def _router_peers(nodes: list[dict], infos: dict, global_peers: list[dict]) -> tuple[list[dict], list[dict]]:
    """Router (ToR) peers as (summary, BGPPeers): global, per rack when every node of the rack has
    the same entry, else per node."""
    summary: list[dict] = []
    resources: list[dict] = []
    keyset = {(p["ip"], p["as_number"]) for p in global_peers}
    for ip, asn in sorted(keyset):
        name = f"{PEER_PREFIX}router-{ip_name(ip)}"
        summary.append({"name": name, "ip": ip, "as_number": asn, "scope": "global"})
        resources.append(_peer(name, {"peerIP": ip, "asNumber": asn}))
    holders: dict[tuple, list[dict]] = {}
    for node in nodes:
        for p in infos[node["host"]]["router_peers"]:
            key = (p["ip"], p["as_number"])
            if key not in keyset:
                holders.setdefault(key, []).append(node)
    if not holders:
        return summary, resources
    rack_sizes: dict[str, int] = {}
    for node in nodes:
        if node["rack"]:
            rack_sizes[node["rack"]] = rack_sizes.get(node["rack"], 0) + 1
    for (ip, asn), members in sorted(holders.items()):
        if len(members) == len(nodes):
            name = f"{PEER_PREFIX}router-{ip_name(ip)}"
            summary.append({"name": name, "ip": ip, "as_number": asn, "scope": "global"})
            resources.append(_peer(name, {"peerIP": ip, "asNumber": asn}))
            continue
        per_rack: dict[str | None, list[dict]] = {}
        for node in members:
            per_rack.setdefault(node["rack"], []).append(node)
        for rack in sorted(per_rack, key=lambda r: r or ""):
            group = per_rack[rack]
            if rack and len(group) == rack_sizes[rack]:
                name = f"{PEER_PREFIX}router-rack-{rack}-{ip_name(ip)}"
                summary.append({"name": name, "ip": ip, "as_number": asn, "scope": "rack", "rack": rack})
                resources.append(
                    _peer(name, {"nodeSelector": f"{LABEL_RACK} == '{rack}'", "peerIP": ip, "asNumber": asn})
                )
                continue
            for node in sorted(group, key=lambda n: n["name"]):
                name = f"{PEER_PREFIX}router-node-{node['name']}-{ip_name(ip)}"
                if len(name) > 253:
                    raise TopologyError(
                        f"hostvars[{node['host']}].calico_router_peers: peer name {name[:40]}... exceeds 253 characters"
                    )
                summary.append({"name": name, "ip": ip, "as_number": asn, "scope": "node", "node": node["name"]})
                resources.append(_peer(name, {"node": node["name"], "peerIP": ip, "asNumber": asn}))
    return summary, resources


# --------------------------------------------------------------------------------------------
# the planner


def _decide_mode(n: int, settings: dict, warnings: list[str]) -> tuple[str, str]:
    limit, forced = settings["mesh_max_nodes"], settings["bgp_mode"]
    mesh_sessions = n * (n - 1) // 2
    if forced == "mesh":
        if n > limit:
            warnings.append(
                f"calico_bgp_mode=mesh forces a full mesh of {n} nodes ({mesh_sessions:,} sessions) "
                f"above calico_mesh_max_nodes {limit}"
            )
        else:
            warnings.append("calico_bgp_mode=mesh overrides the size rule (it would also choose mesh here)")
        return "mesh", f"forced by calico_bgp_mode=mesh: {n} nodes in a full mesh, {mesh_sessions:,} sessions"
    if forced == "route_reflector":
        if n <= limit:
            warnings.append(
                f"calico_bgp_mode=route_reflector overrides the size rule ({n} nodes <= "
                f"calico_mesh_max_nodes {limit} would choose mesh)"
            )
        else:
            warnings.append(
                "calico_bgp_mode=route_reflector overrides the size rule (it would also choose route reflectors here)"
            )
        return "route_reflector", f"forced by calico_bgp_mode=route_reflector with {n} nodes"
    if n <= limit:
        return (
            "mesh",
            f"{n} nodes <= calico_mesh_max_nodes {limit}: full node-to-node mesh ({mesh_sessions:,} sessions)",
        )
    return (
        "route_reflector",
        f"{n} nodes > calico_mesh_max_nodes {limit}: a full mesh would need {mesh_sessions:,} sessions",
    )


def plan_topology(groups: Mapping, hostvars: Mapping, settings: Mapping | None = None, previous=None) -> dict:
    """Plan the BGP topology of an inventory; raises TopologyError before anything is decided."""
    settings = normalise_settings(settings)
    warnings: list[str] = []
    nodes_info, external_info = read_hosts(groups, hostvars, settings)
    infos = {**nodes_info, **external_info}
    n = len(nodes_info)
    if n == 0:
        raise TopologyError(f"groups: no hosts in the node groups {', '.join(NODE_GROUPS)}")
    mode, reason = _decide_mode(n, settings, warnings)
    kind = settings["rr_kind"]
    in_cluster = kind == "in_cluster"
    as_number = settings["as_number"]

    assignment: dict[str, str] = {}
    reflector_cluster: dict[str, str] = {}
    spread: dict = {"failure_domains_known": None, "clusters_in_one_domain": [], "ok": True}
    if mode == "route_reflector":
        reflector_cluster, assignment, detail, spread = _plan_reflectors(
            groups, nodes_info, external_info, settings, previous, warnings
        )
        reason = f"{reason}; {detail}"
    elif group_members(groups, RR_GROUP):
        warnings.append(f"groups[{RR_GROUP}] is not used: the plan is a full mesh")

    by_name = sorted(nodes_info.values(), key=lambda i: i["name"])
    nodes = []
    for info in by_name:
        host = info["host"]
        is_rr = in_cluster and host in reflector_cluster
        cid = reflector_cluster.get(host) if is_rr else assignment.get(host)
        nodes.append(
            {
                "name": info["name"],
                "host": host,
                "ip": info["ip"],
                "group": info["group"],
                "rack": info["rack"],
                "zone": info["zone"],
                "as_number": info["as_number"],
                "route_reflector": is_rr,
                "cluster_id": cid,
                "peers": [],
            }
        )
    reflectors = _reflector_list(reflector_cluster, infos, assignment)
    members_of: dict[str, list[str]] = {}
    for r in reflectors:
        members_of.setdefault(r["cluster_id"], []).append(r["name"])
    for node in nodes:
        if node["cluster_id"] and not node["route_reflector"]:
            node["peers"] = members_of[node["cluster_id"]]
        elif node["route_reflector"]:
            node["peers"] = [r["name"] for r in reflectors if r["name"] != node["name"]]

    if mode == "route_reflector":
        off_as = [nd["host"] for nd in nodes if nd["as_number"] != as_number]
        if off_as:
            raise TopologyError(
                f"hostvars[{off_as[0]}].calico_as_number: {infos[off_as[0]]['as_number']} differs from "
                f"calico_as_number "
                f"{as_number}; route reflectors need every node in the same AS (iBGP)"
            )

    router_summary, router_resources = _router_peers(nodes, infos, settings["router_peers"])
    stats = _stats(mode, nodes, reflectors, router_summary, len(nodes))
    resources = {
        "bgpconfigurations": [_bgp_configuration(mode == "mesh", as_number)],
        "nodes": [_node_resource(nd, infos[nd["host"]], as_number) for nd in nodes],
        "bgppeers": (_reflector_peers(reflectors, kind, as_number) if mode == "route_reflector" else [])
        + router_resources,
    }
    return {
        "mode": mode,
        "reason": reason,
        "warnings": warnings,
        "as_number": as_number,
        "reflector_kind": kind,
        "settings": {k: settings[k] for k in DEFAULTS if k != "router_peers"},
        "nodes": nodes,
        "reflectors": reflectors,
        "router_peers": router_summary,
        "stats": stats,
        "spread": spread,
        "default_cluster": reflectors[0]["cluster_id"] if reflectors and in_cluster else None,
        "resources": resources,
        "inputs": _replay_inputs(groups, nodes_info, external_info, settings),
    }


def _keep_cluster_count(k: int, keep: dict[str, str], settings: dict, candidates: int, nodes: int | None) -> int:
    """Hysteresis: with a previous plan, keep its clusters while candidates (and clients) allow."""
    if not keep:
        return k
    base = int(ipaddress.IPv4Address(settings["rr_cluster_id_base"]))
    indexes = [int(ipaddress.IPv4Address(c)) - base for c in keep.values()]
    previous_k = max((i + 1 for i in indexes if 0 <= i < 4096), default=0)
    per = settings["rr_per_client"]
    while previous_k > k and (previous_k * per > candidates or (nodes is not None and nodes - previous_k * per < 1)):
        previous_k -= 1
    return max(k, previous_k)


def _plan_reflectors(groups, nodes_info, external_info, settings, previous, warnings):
    in_cluster = settings["rr_kind"] == "in_cluster"
    per, cap = settings["rr_per_client"], settings["rr_capacity"]
    n = len(nodes_info)
    candidates, tiers = _candidates(groups, nodes_info, external_info, settings)
    if not candidates:
        where = (
            f"groups[{RR_GROUP}]"
            if not in_cluster
            else f"groups[{RR_GROUP}] and calico_rr_candidate_groups ({', '.join(settings['rr_candidate_groups'])})"
        )
        raise TopologyError(f"{where}: route reflector mode needs reflector candidates, none found")
    k = _cluster_count(n, settings, in_cluster)
    if k * per > len(candidates):
        raise TopologyError(
            f"calico_rr_candidate_groups: {n} nodes need {k} reflector cluster(s) x {per} reflectors = {k * per} "
            f"reflectors at calico_rr_capacity {cap}, but only {len(candidates)} candidate(s): "
            f"{', '.join(candidates[:8])}; add hosts to the {RR_GROUP} group or raise calico_rr_capacity"
        )
    keep, keep_clients = _previous_assignments(previous)
    for host, cid in (keep | keep_clients).items():
        as_cluster_id(cid, f"previous[{host}]")
    k = _keep_cluster_count(k, keep, settings, len(candidates), n if in_cluster else None)
    if in_cluster and n - k * per < 1:
        raise TopologyError(f"calico_rr_per_client: {k * per} reflectors leave no clients among {n} nodes")
    cids = cluster_ids(settings["rr_cluster_id_base"], k)
    infos = {**nodes_info, **external_info}
    chosen = _pick_reflectors(cids, candidates, tiers, infos, per, keep)
    spread = _spread_report(chosen, infos, settings, warnings)
    reflector_cluster = {h: cid for cid, hosts in chosen.items() for h in hosts}
    spare = len(candidates) - len(reflector_cluster)
    if external_info and spare:
        unused = sorted(set(candidates) - set(reflector_cluster))
        warnings.append(f"external reflector hosts not needed by the plan: {', '.join(unused)}")
    clients = [info for host, info in sorted(nodes_info.items()) if not (in_cluster and host in reflector_cluster)]
    assignment = _assign_clients(clients, cids, cap, keep_clients)
    detail = (
        f"{k} reflector cluster(s) x {per} {settings['rr_kind'].replace('_', '-')} reflectors "
        f"({len(reflector_cluster)} reflectors, up to {cap} clients each) serve {len(clients)} clients"
    )
    return reflector_cluster, assignment, detail, spread


def _reflector_list(reflector_cluster: dict, infos: dict, assignment: dict) -> list[dict]:
    counts: dict[str, int] = {}
    for cid in assignment.values():
        counts[cid] = counts.get(cid, 0) + 1
    out = []
    for host, cid in reflector_cluster.items():
        info = infos[host]
        out.append(
            {
                "name": info["name"],
                "host": host,
                "ip": info["ip"],
                "cluster_id": cid,
                "rack": info["rack"],
                "zone": info["zone"],
                "group": info["group"],
                "clients": counts.get(cid, 0),
            }
        )
    return sorted(out, key=lambda r: (int(ipaddress.IPv4Address(r["cluster_id"])), r["name"]))


def _stats(mode: str, nodes: list[dict], reflectors: list[dict], router: list[dict], n: int) -> dict:
    mesh = n * (n - 1) // 2
    router_per_node = {nd["name"]: 0 for nd in nodes}
    for p in router:
        if p["scope"] == "global":
            for name in router_per_node:
                router_per_node[name] += 1
        elif p["scope"] == "rack":
            for nd in nodes:
                if nd["rack"] == p["rack"]:
                    router_per_node[nd["name"]] += 1
        else:
            router_per_node[p["node"]] += 1
    router_sessions = sum(router_per_node.values())
    if mode == "mesh":
        per_node = {nd["name"]: n - 1 + router_per_node[nd["name"]] for nd in nodes}
        return {
            "nodes": n,
            "mesh_sessions": mesh,
            "plan_sessions": mesh,
            "router_sessions": router_sessions,
            "reflectors": 0,
            "clusters": 0,
            "sessions_per_reflector": {},
            "max_sessions_on_node": max(per_node.values(), default=0),
        }
    r = len(reflectors)
    rr_mesh = r * (r - 1) // 2
    client_sessions = sum(len(nd["peers"]) for nd in nodes if not nd["route_reflector"])
    per_reflector = {x["name"]: x["clients"] + r - 1 + router_per_node.get(x["name"], 0) for x in reflectors}
    per_client = [len(nd["peers"]) + router_per_node[nd["name"]] for nd in nodes if not nd["route_reflector"]]
    return {
        "nodes": n,
        "mesh_sessions": mesh,
        "plan_sessions": client_sessions + rr_mesh,
        "router_sessions": router_sessions,
        "reflectors": r,
        "clusters": len({x["cluster_id"] for x in reflectors}),
        "sessions_per_reflector": per_reflector,
        "max_sessions_on_node": max(list(per_reflector.values()) + per_client, default=0),
    }


# --------------------------------------------------------------------------------------------
# re-planning from the plan's own inputs, keeping what the datastore holds


def _replay_vars(info: dict, settings: dict) -> dict:
    """The host variables that give ``info`` back through ``read_hosts``, and nothing else."""
    hv: dict = {}
    if info["prefix"] == 32:
        hv["calico_bgp_ip"] = info["ip"]
    else:
        hv["ansible_default_ipv4"] = {"address": info["ip"], "prefix": info["prefix"]}
    if info["name"] != info["host"]:
        hv["calico_node_name"] = info["name"]
    for key in ("rack", "zone"):
        if info[key]:
            hv[f"calico_{key}"] = info[key]
    if info["as_number"] != settings["as_number"]:
        hv["calico_as_number"] = info["as_number"]
    if info["router_peers"]:
        hv["calico_router_peers"] = info["router_peers"]
    return hv


def _replay_inputs(groups: Mapping, nodes_info: dict, external_info: dict, settings: dict) -> dict:
    """What :func:`replan` needs to plan this inventory again: the groups the planner reads, restricted
    to its hosts, their variables and the settings."""
    hosts = set(nodes_info) | set(external_info)
    names = dict.fromkeys([*NODE_GROUPS, RR_GROUP, *settings["rr_candidate_groups"]])
    out_groups = {g: sorted(h for h in set(group_members(groups, g)) if h in hosts) for g in names}
    infos = {**nodes_info, **external_info}
    return {
        "groups": {g: members for g, members in out_groups.items() if members},
        "hostvars": {h: _replay_vars(infos[h], settings) for h in sorted(hosts)},
        "settings": dict(settings),
    }


def stored_assignment(node_objects, plan: dict) -> dict:
    """The reflector and client assignment the datastore holds, as a ``previous`` for the planner.

    Read from the labels the apply writes (``kubescale.io/rr-cluster`` on reflectors that have
    ``kubescale.io/route-reflector``, ``kubescale.io/rr-client-of`` on clients), for the Nodes of the
    plan's hosts; Nodes the plan does not know are left out.
    """
    host_of = {n["name"]: n["host"] for n in plan["nodes"]}
    host_of.update({r["name"]: r["host"] for r in plan["reflectors"]})
    reflectors, clients = [], []
    for obj in node_objects:
        host = host_of.get(obj["metadata"]["name"])
        labels = obj["metadata"].get("labels") or {}
        if host is None:
            continue
        if labels.get(LABEL_RR) == "true" and labels.get(LABEL_RR_CLUSTER):
            reflectors.append({"host": host, "name": obj["metadata"]["name"], "cluster_id": labels[LABEL_RR_CLUSTER]})
        elif labels.get(LABEL_RR_CLIENT_OF):
            clients.append({"host": host, "name": obj["metadata"]["name"], "cluster_id": labels[LABEL_RR_CLIENT_OF]})
    if plan.get("reflector_kind") == "external":  # external reflectors are no Nodes: keep the plan's
        reflectors = [{"host": r["host"], "name": r["name"], "cluster_id": r["cluster_id"]} for r in plan["reflectors"]]
    return {"reflectors": reflectors, "nodes": clients}


def replan(plan: dict, previous) -> dict:
    """Plan the same inventory and settings as ``plan`` again, keeping ``previous``'s assignment."""
    inputs = plan.get("inputs")
    if not isinstance(inputs, Mapping) or not {"groups", "hostvars", "settings"} <= set(inputs):
        raise TopologyError("plan.inputs: missing; make the plan with this collection's bgp_topology_plan filter")
    return plan_topology(inputs["groups"], inputs["hostvars"], inputs["settings"], previous=previous)
