"""A lab built from a plan (external reflectors from the route_reflector role's template, nodes from
plan_configs.node_config): used by tests/integration/test_route_reflector_role.py and
test_bgp_status.py. The scale lab and the reachability tests are datastore-driven (scenario.py)."""

from __future__ import annotations

import datetime
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from ansible_collections.kubescale.calico.plugins.module_utils.bird import BirdClient, BirdError, parse_protocols

from .netlab import Lab
from .plan_configs import blocks, node_config, reflector_config


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


@dataclass
class Result:
    mode: str
    n: int
    reflectors: int
    daemons: int
    plan_sessions: int
    started_s: float | None = None           # until every daemon's control socket existed
    converged_s: float | None = None         # until every node had all N blocks: min of the two below
    route_time_converged_s: float | None = None  # from BIRD's route timestamps (upper bound)
    poll_converged_s: float | None = None    # when the driver's poll saw it (upper bound)
    last_route_change_s: float | None = None  # newest route timestamp in any node (routing quiet)
    converged_nodes: int = 0
    outcome: str = ""                        # converged / "did not converge in T s" / aborted: ...
    sessions_established: int | None = None  # counted on both ends, divided by 2
    sessions_per_daemon_max: int | None = None
    sessions_per_node_max: int | None = None
    pss_total_mib: float | None = None
    pss_max_mib: float | None = None
    daemons_answering: int | None = None     # at the end of an unconverged run
    sessions_established_at_end: int | None = None
    load_avg_before: str = ""
    failover: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _networks(lab: Lab, name: str) -> int:
    count = lab.query(name, "route_count", timeout=15)
    return count["networks"] if count else -1


def _established(lab: Lab, name: str) -> int | None:
    try:
        with BirdClient(lab.hosts[name].socket, 30) as client:
            protos = parse_protocols(client.command("show protocols"))
    except BirdError:
        return None
    return sum(1 for p in protos if p["proto"] == "BGP" and p["info"].startswith("Established"))


_ROUTE_TIME = re.compile(r"\[\S+ (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d+)")


def _route_times(lab: Lab, name: str) -> tuple[float, float] | None:
    """(complete, last_change) epochs for node ``name`` from ``show route``'s timestamps.

    complete = newest over all blocks of the *oldest* path to that block (when the node first
    had every block); last_change = newest timestamp of any path. Node configs use
    ``timeformat route iso long ms``; BIRD 2 lists every path, best first.
    """
    try:
        with BirdClient(lab.hosts[name].socket, 60) as client:
            lines = client.command("show route")
    except BirdError:
        return None
    first: dict[str, str] = {}
    net = None
    for _code, text in lines:
        match = _ROUTE_TIME.search(text)
        if not match:
            continue
        if not text.startswith(" "):
            net = text.split()[0]
        stamp = match.group(1)
        if net is not None and (net not in first or stamp < first[net]):
            first[net] = stamp
    stamps = [m.group(1) for _c, text in lines if (m := _ROUTE_TIME.search(text))]
    if not first:
        return None

    def epoch(value: str) -> float:
        return datetime.datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f").timestamp()

    return epoch(max(first.values())), epoch(max(stamps))


class Scenario:
    """Build, run and tear down one lab from a plan (``with Scenario(...) as s``)."""

    def __init__(self, plan: dict, workdir: Path, bird: str = "bird", log=print, threads: int = 8) -> None:
        self.plan = plan
        self.lab = Lab(workdir)
        self.bird = bird
        self.log = log
        self.pool = ThreadPoolExecutor(threads)
        self.nodes = [nd["name"] for nd in plan["nodes"]]
        self.rrs = [r["name"] for r in plan["reflectors"] if r["name"] not in set(self.nodes)]
        self.blocks = blocks(plan)
        self.t0 = 0.0
        self.t0_wall = 0.0

    def __enter__(self) -> Scenario:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def teardown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.lab.teardown()

    # -- build -----------------------------------------------------------------------------
    def build(self) -> None:
        plan = self.plan
        hosts = [(r["name"], r["ip"]) for r in plan["reflectors"] if r["name"] in self.rrs]
        hosts += [(nd["name"], nd["ip"]) for nd in plan["nodes"]]
        self.lab.create(hosts)
        if plan["mode"] == "mesh":
            peers = {name: [o for o in self.nodes if o != name] for name in self.nodes}
        else:
            peers = {nd["name"]: list(nd["peers"]) for nd in plan["nodes"]}
            for rr in self.rrs:
                peers[rr] = [o for o in self.rrs if o != rr]
            for node, its in list(peers.items()):
                for rr in its:
                    if rr in self.rrs:
                        peers[rr].append(node)
        list(self.pool.map(lambda kv: self.lab.add_neighbours(*kv), peers.items()))

    def configs(self) -> dict[str, str]:
        out = {rr: reflector_config(self.plan, rr) for rr in self.rrs}
        for nd in self.plan["nodes"]:
            out[nd["name"]] = node_config(self.plan, nd, self.blocks[nd["name"]])
        return out

    def start(self, deadline: float, min_mem_kib: int = 0) -> float:
        """Start reflectors then nodes; returns seconds until every control socket existed.

        Raises TimeoutError past ``deadline`` and MemoryError when MemAvailable drops below
        ``min_mem_kib`` while daemons are still being started.
        """
        configs = self.configs()
        nofile = 1024 + 2 * len(self.nodes)
        self.t0 = time.monotonic()
        self.t0_wall = time.time()
        for name in self.rrs:
            self.lab.start(name, configs[name], self.bird, nofile=nofile)
        for i in range(0, len(self.nodes), 50):  # nodes in parallel, 50 at a time
            if min_mem_kib and mem_available_kib() < min_mem_kib:
                raise MemoryError(f"MemAvailable below {min_mem_kib // 1024} MiB after starting {i} nodes")
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {i} nodes started")
            batch = self.nodes[i:i + 50]
            list(self.pool.map(lambda x: self.lab.start(x, configs[x], self.bird, nofile=nofile), batch))
        self.lab.wait_sockets(self.rrs + self.nodes, timeout=max(1.0, deadline - time.monotonic()))
        return time.monotonic() - self.t0

    # -- measure ---------------------------------------------------------------------------
    def wait_converged(self, deadline: float, min_mem_kib: int = 0) -> tuple[float | None, int, str]:
        """Poll until every node has all N blocks; returns (seconds since t0, nodes done, outcome).

        The poll is kept light so that it does not take CPU from the daemons it measures:
        pending nodes are checked a few at a time and a round stops at the first batch with an
        incomplete node.
        Outcome: converged / timeout / memory.
        """
        want = len(self.nodes)
        pending = list(self.nodes)
        step = 8
        while pending:
            if time.monotonic() > deadline:
                return None, want - len(pending), "timeout"
            if min_mem_kib and mem_available_kib() < min_mem_kib:
                return None, want - len(pending), "memory"
            batch = pending[:step]
            nets = list(self.pool.map(lambda x: _networks(self.lab, x), batch))
            done = {name for name, v in zip(batch, nets, strict=True) if v >= want}
            pending = [x for x in pending[step:] if x not in done] + [x for x in batch if x not in done]
            if len(done) < len(batch):
                time.sleep(0.5)
        return time.monotonic() - self.t0, want, "converged"

    def route_times(self) -> dict[str, tuple[float, float] | None]:
        """Per node (complete, last_change) epochs from BIRD's route timestamps."""
        return dict(zip(self.nodes, self.pool.map(lambda x: _route_times(self.lab, x), self.nodes),
                        strict=True))

    def sessions(self, budget_s: float = 600) -> dict[str, int | None]:
        """Established BGP sessions per daemon; None for daemons that did not answer in time."""
        names = self.rrs + self.nodes
        futures = {self.pool.submit(_established, self.lab, x): x for x in names}
        done, _unused = wait(futures, timeout=budget_s)
        for f in futures:
            f.cancel()
        return {futures[f]: (f.result() if f in done else None) for f in futures}

    def pss(self) -> dict[str, int]:
        return {name: self.lab.pss_kib(name) for name in self.rrs + self.nodes}

    def routes_via(self, name: str, peer_ip: str) -> int | None:
        """Routes ``name`` imported on its session to ``peer_ip`` (None if not established)."""
        try:
            with BirdClient(self.lab.hosts[name].socket, 30) as client:
                protos = client.protocols()
        except BirdError:
            return None
        for p in protos:
            if p.get("neighbor_address") == peer_ip:
                return p["routes_imported"] if p.get("bgp_state") == "Established" else None
        return None

    def kill_reflector(self, observe_s: float, sig: int = signal.SIGKILL) -> dict:
        """Kill the first reflector (SIGKILL: a crash, SIGTERM: a clean stop that withdraws its
        routes) and sample every node's blocks for ``observe_s`` seconds."""
        victim = self.rrs[0]
        survivor_ip = self.lab.hosts[self.rrs[1]].ip if len(self.rrs) > 1 else None
        want = len(self.nodes)
        self.lab.kill(victim, sig)
        killed = time.monotonic()
        low = dict.fromkeys(self.nodes, want)
        rounds = 0
        while time.monotonic() - killed < observe_s:
            for name, nets in zip(self.nodes, self.pool.map(lambda x: _networks(self.lab, x), self.nodes),
                                  strict=True):
                if nets >= 0:
                    low[name] = min(low[name], nets)
            rounds += 1
            time.sleep(1)
        final = dict(zip(self.nodes, self.pool.map(lambda x: _networks(self.lab, x), self.nodes), strict=True))
        via = {}
        if survivor_ip:
            via = dict(zip(self.nodes, self.pool.map(lambda x: self.routes_via(x, survivor_ip), self.nodes),
                           strict=True))
        return {
            "killed": victim,
            "signal": signal.Signals(sig).name,
            "observed_s": round(time.monotonic() - killed, 1),
            "sample_rounds": rounds,
            "nodes_that_lost_a_block": sorted(n for n, v in low.items() if v < want),
            "nodes_with_all_blocks_at_end": sum(1 for v in final.values() if v >= want),
            "nodes_with_all_peer_blocks_via_survivor": sum(1 for v in via.values() if v is not None and v >= want - 1),
        }


def run(plan: dict, workdir: Path, timeout: float, observe_s: float = 20.0, bird: str = "bird",
        min_mem_kib: int = 3 * 1024 * 1024, log=print) -> Result:
    """Full measurement of one plan; the scenario is torn down before returning."""
    nodes = plan["nodes"]
    rrs = [r for r in plan["reflectors"] if r["name"] not in {nd["name"] for nd in nodes}]
    res = Result(plan["mode"], len(nodes), len(rrs), len(nodes) + len(rrs), plan["stats"]["plan_sessions"])
    res.load_avg_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    with Scenario(plan, workdir, bird=bird, log=log) as sc:
        t_build = time.monotonic()
        sc.build()
        log(f"{plan['mode']} N={len(nodes)}: namespaces ready in {time.monotonic() - t_build:.1f} s")
        deadline = time.monotonic() + timeout
        try:
            res.started_s = round(sc.start(deadline, min_mem_kib), 2)
        except TimeoutError as exc:
            res.outcome = f"did not start in {timeout:.0f} s ({exc})"
        except MemoryError as exc:
            res.outcome = f"aborted while starting: {exc}"
        if not res.outcome:
            secs, done, why = sc.wait_converged(deadline, min_mem_kib)
            res.converged_nodes = done
            if why == "converged":
                # Two upper bounds of "every node has every block", the result is the smaller:
                # the poll (a round on a starved machine takes long) and BIRD's route timestamps
                # (per block its oldest path, per node its newest block, the newest node), which
                # are exact unless a path was re-announced after it first arrived.
                res.poll_converged_s = round(secs, 2)
                res.converged_s = res.poll_converged_s
                times = sc.route_times()
                if all(v is not None for v in times.values()):
                    res.route_time_converged_s = round(max(v[0] for v in times.values()) - sc.t0_wall, 2)
                    res.last_route_change_s = round(max(v[1] for v in times.values()) - sc.t0_wall, 2)
                    res.converged_s = min(res.poll_converged_s, res.route_time_converged_s)
                res.outcome = "converged"
            elif why == "memory":
                elapsed = time.monotonic() - sc.t0
                res.outcome = f"aborted after {elapsed:.0f} s: MemAvailable below {min_mem_kib // 1024} MiB"
            else:
                res.outcome = f"did not converge in {timeout:.0f} s ({done}/{len(nodes)} nodes complete)"
        log(f"{plan['mode']} N={len(nodes)}: {res.outcome} {res.converged_s or ''}")
        if res.outcome != "converged":
            est = sc.sessions(budget_s=60)
            res.daemons_answering = sum(1 for v in est.values() if v is not None)
            res.sessions_established_at_end = sum(v or 0 for v in est.values()) // 2
            log(f"at the end: {res.daemons_answering} daemons answered, "
                f"{res.sessions_established_at_end} sessions established")
        pss = sc.pss()
        res.pss_total_mib = round(sum(pss.values()) / 1024, 1)
        res.pss_max_mib = round(max(pss.values()) / 1024, 1)
        if res.outcome == "converged":
            settle = time.monotonic() + 15  # sessions not needed for convergence (RR-RR) may lag
            while True:
                est = sc.sessions()
                if sum(v or 0 for v in est.values()) // 2 >= res.plan_sessions or time.monotonic() > settle:
                    break
                time.sleep(1)
            counts = [v for v in est.values() if v is not None]
            res.sessions_established = sum(counts) // 2
            res.sessions_per_daemon_max = max(counts)
            res.sessions_per_node_max = max(v for k, v in est.items() if k in set(sc.nodes) and v is not None)
            if plan["mode"] == "route_reflector" and len(rrs) > 1 and observe_s > 0:
                res.failover = sc.kill_reflector(observe_s)
                log(f"failover: {res.failover}")
    return res
