"""One lab run driven from the datastore: etcd → ``bird_render`` → BIRD in namespaces.

:class:`Scenario` is the calico-node stand-in of every node: :meth:`Scenario.sync` reads the Calico
datastore (at the current or a given revision), renders every node's BIRD config with the collection's
``bird_render`` and, like confd, writes the configs that changed and has BIRD reload them (``birdc
configure``); Nodes that appear in etcd get a namespace and a BIRD. :class:`Probe` samples every
node's table about once a second and counts the (node, block) pairs lost against a baseline.

Used by ``bench/bgp_lab/run.py`` (the scale lab) and by ``tests/integration/test_bgp_reachability.py``.
"""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ansible_collections.kubescale.calico.plugins.module_utils.bird import (
    BirdClient,
    BirdError,
    parse_prefixes,
    parse_protocols,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.bird_render import (
    protocol_name,
    read_datastore,
    render_all,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.sessions import peerings, speakers

from .configs import BLOCK_NET, apply
from .netlab import Lab

# Full timestamps on routes; BIRD's log to its own file (<node>.out). Without a log statement BIRD
# logs to syslog, and where no syslog daemon listens glibc writes to the console: at N = 400 the
# "Unexpected connect from unknown address" warnings of a mesh being dismantled went to a serial
# console and took the machine's CPU (found with perf: uart_write under BIRD's syslog calls).
EXTRA = ("timeformat route iso long ms;", "log stderr all;")


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


def table_blocks(lab: Lab, name: str, timeout: float = 30.0) -> set[str] | None:
    """The pool prefixes in ``name``'s BIRD table (None if BIRD did not answer)."""
    try:
        with BirdClient(lab.hosts[name].socket, timeout) as client:
            lines = client.command(f"show route primary where net ~ {BLOCK_NET}")
    except (BirdError, OSError):
        return None
    return parse_prefixes(lines)


class Scenario:
    """The lab's calico-node stand-ins, configured only from what etcd holds."""

    def __init__(self, client, workdir: Path, bird: str = "bird", log=print, threads: int = 8,
                 reflector_mesh: str = "ignore") -> None:
        self.client = client
        self.reflector_mesh = reflector_mesh  # which confd's mesh rule for reflectors (sessions.peerings)
        self.lab = Lab(workdir)
        self.bird = bird
        self.log = log
        self.pool = ThreadPoolExecutor(threads)
        self.objects: dict = {}
        self.configs: dict[str, str] = {}
        self.peer_ips: dict[str, dict[str, str]] = {}  # node -> {BIRD protocol name: peer IP}
        self.stopped: set[str] = set()
        self.probes: list[Probe] = []
        self.t0 = time.monotonic()

    def __enter__(self) -> Scenario:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def teardown(self) -> None:
        for probe in self.probes:
            probe.stop()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.lab.teardown()

    @property
    def nodes(self) -> list[str]:
        """The running nodes."""
        return [n for n in self.configs if n not in self.stopped]

    def expected(self) -> set[str]:
        """Every running node's blocks: what each running node should have."""
        blocks = self.objects.get("blocks") or {}
        return {b for n in self.nodes for b in blocks.get(n, [])}

    # -- confd ------------------------------------------------------------------------------
    def sync(self, revision: int | None = None) -> dict:
        """Read etcd, render every node, start new nodes and reload the changed ones."""
        objects = read_datastore(self.client, revision=revision)
        configs = render_all(objects, extra=EXTRA, reflector_mesh=self.reflector_mesh)
        nodes = speakers(objects)
        new = [n for n in configs if n not in self.lab.hosts]
        if new and not self.lab.hosts:
            self.lab.create([(n, nodes[n].ip) for n in new])
        elif new:
            self.lab.add_hosts([(n, nodes[n].ip) for n in new])
        changed = [n for n in configs if n not in new and n not in self.stopped and configs[n] != self.configs.get(n)]
        rendered = peerings(objects, self.reflector_mesh)
        by_ip = {s.ip: n for n, s in nodes.items()}
        touched = [*new, *changed]
        neigh = [(n, [by_ip[p.ip] for p in rendered[n] if p.ip in by_ip]) for n in touched]
        list(self.pool.map(lambda kv: self.lab.add_neighbours(*kv), neigh))
        nofile = 1024 + 2 * len(configs)
        for i in range(0, len(new), 50):
            list(self.pool.map(lambda x: self.lab.start(x, configs[x], self.bird, nofile=nofile), new[i : i + 50]))
        if new:
            self.lab.wait_sockets(new, timeout=120)
        list(self.pool.map(lambda x: self.lab.reconfigure(x, configs[x]), changed))
        self.objects, self.configs = objects, configs
        self.peer_ips = {n: {protocol_name(p): p.ip for p in rendered.get(n, [])} for n in configs}
        return {"revision": objects["revision"], "started": len(new), "reconfigured": len(changed)}

    def transition(self, plan: dict, phase: str = "all", dwell: float = 0.0) -> list[dict]:
        """Apply ``plan`` (``phase`` of the collection's apply), then sync every revision it wrote in
        order, ``dwell`` seconds apart after a change (0: back to back, as a confd that keeps up)."""
        start = self.client.revision()
        result = apply(self.client, plan, phase)
        end = self.client.revision()
        steps = []
        for rev in range(start + 1, end + 1):
            step = self.sync(rev)
            step["done_at"] = time.monotonic()  # when every changed BIRD had been told to reload
            steps.append(step)
            if step["reconfigured"] and dwell:
                time.sleep(dwell)
        self.log(f"applied {plan['mode']}: revisions {start + 1}..{end}, steps {result.get('steps')}")
        return steps

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        self.lab.kill(name, sig)
        self.stopped.add(name)

    # -- measure ----------------------------------------------------------------------------
    def unestablished(self, name: str) -> int | None:
        """Peer addresses of ``name`` with no Established session, ignoring stopped nodes (None: no answer).

        Per address, not per protocol: while a node is both in the mesh and selector-peered, confd
        renders two protocols to one address and only one of them can be up. The short ``show
        protocols`` is enough (the rendered protocol names map to peer addresses): at N = 400 a
        ``show protocols all`` round over every node is millions of lines.
        """
        try:
            with BirdClient(self.lab.hosts[name].socket, 30) as client:
                protos = parse_protocols(client.command("show protocols"))
        except (BirdError, OSError):
            return None
        names = self.peer_ips.get(name, {})
        down_ips = {self.lab.hosts[n].ip for n in self.stopped}
        bgp = [(names.get(p["name"]), p) for p in protos if p["proto"] == "BGP"]
        bgp = [(ip, p) for ip, p in bgp if ip not in down_ips]
        up = {ip for ip, p in bgp if p["info"].startswith("Established")}
        return len({ip for ip, _p in bgp} - up)

    def wait_sessions(self, deadline: float, progress_every: float = 30.0) -> bool:
        """Until every running node has had all its rendered sessions Established (what a verify step
        checks, host by host): a node found complete is not asked again. Logs progress."""
        pending = list(self.nodes)
        began = last_log = time.monotonic()
        while pending and time.monotonic() < deadline:
            counts = dict(zip(pending, self.pool.map(self.unestablished, pending), strict=True))
            pending = [n for n, c in counts.items() if c != 0]
            if time.monotonic() - last_log >= progress_every and pending:
                last_log = time.monotonic()
                missing = sum(c for c in counts.values() if c)
                self.log(f"sessions: {len(pending)} nodes waiting ({missing} peer addresses not Established, "
                         f"{sum(c is None for c in counts.values())} not answering) after {last_log - began:.0f} s")
            if pending:
                time.sleep(0.5)
        return not pending

    def wait_fed_by(self, peer_ips: set[str], deadline: float) -> bool:
        """Until every running node not at ``peer_ips`` has, from each of them, an Established session
        that imported every other running node's block: a path via each reflector, not just one
        (converged only means every block arrived by some path)."""
        blocks = self.objects.get("blocks") or {}
        every = self.expected()
        pending = [n for n in self.nodes if self.lab.hosts[n].ip not in peer_ips]
        while pending and time.monotonic() < deadline:
            def fed(name: str) -> bool:
                protos = self.lab.query(name, "protocols", timeout=30) or []
                want = len(every - set(blocks.get(name, [])))
                got = {p.get("neighbor_address"): p.get("routes_imported", 0) for p in protos
                       if p["proto"] == "BGP" and p.get("bgp_state") == "Established"}
                return all(got.get(ip, -1) >= want for ip in peer_ips)

            pending = [n for n, ok in zip(pending, self.pool.map(fed, pending), strict=True) if not ok]
            if pending:
                time.sleep(0.5)
        return not pending

    def tables(self, names: list[str] | None = None, pool: ThreadPoolExecutor | None = None,
               timeout: float = 30.0) -> dict:
        """{node: its pool prefixes, None if it did not answer in ``timeout`` s}; ``pool``: the probe's
        own threads."""
        names = self.nodes if names is None else names
        runner = pool or self.pool
        return dict(zip(names, runner.map(lambda x: table_blocks(self.lab, x, timeout), names), strict=True))

    def wait_converged(self, deadline: float) -> tuple[float | None, int, str]:
        """Until every running node has every running node's block: (seconds since t0, done, outcome)."""
        want = self.expected()
        pending = list(self.nodes)
        while pending:
            if time.monotonic() > deadline:
                return None, len(self.nodes) - len(pending), "timeout"
            batch = pending[:16]
            got = self.tables(batch)
            done = {n for n, t in got.items() if t is not None and want <= t}
            pending = [x for x in pending[16:] if x not in done] + [x for x in batch if x not in done]
            if len(done) < len(batch):
                time.sleep(0.5)
        return time.monotonic() - self.t0, len(self.nodes), "converged"


class Probe:
    """Samples every node's table about every ``interval`` s; counts (node, block) pairs lost.

    The baseline is each node's pool prefixes when the probe starts; a pair is lost at a sample when
    the node answered and lacks a block it had. :meth:`exclude` drops a node (stopped on purpose) as
    holder and as owner of blocks.
    """

    def __init__(self, sc: Scenario, interval: float = 1.0, answer_timeout: float = 30.0) -> None:
        self.sc = sc
        self.interval = interval
        # a BIRD busy reloading can take seconds to answer; a short timeout counts it "unanswered"
        # and keeps the rounds coming while hundreds of daemons reload
        self.answer_timeout = answer_timeout
        self.baseline: dict[str, set[str]] = {}
        self.excluded_blocks: set[str] = set()
        self.samples: list[dict] = []
        self.lost_pairs: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(4)  # its own threads: a probe round never delays a sync
        self.t0 = 0.0

    def start(self) -> Probe:
        self.baseline = {n: t for n, t in self.sc.tables(pool=self._pool).items() if t is not None}
        self.t0 = time.monotonic()
        self.sc.probes.append(self)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def exclude(self, name: str) -> None:
        self.excluded_blocks.update((self.sc.objects.get("blocks") or {}).get(name, []))
        self.baseline.pop(name, None)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.sample()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def sample(self) -> dict:
        names = [n for n in self.baseline if n not in self.sc.stopped]
        got = self.sc.tables(names, self._pool, self.answer_timeout)
        lost = 0
        missing_nodes = 0
        unanswered = 0
        for name, table in got.items():
            had = self.baseline.get(name)  # None: excluded while this sample ran
            if had is None:
                continue
            if table is None:
                unanswered += 1
                continue
            gone = had - table - self.excluded_blocks
            lost += len(gone)
            missing_nodes += bool(gone)
            self.lost_pairs.update((name, b) for b in gone)
        row = {
            "t": round(time.monotonic() - self.t0, 2),
            "lost_pairs": lost,
            "nodes_missing": missing_nodes,
            "unanswered": unanswered,
            "nodes": len(names),
        }
        self.samples.append(row)
        return row

    def stop(self) -> dict:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=60)  # a daemon thread: teardown goes on without it
        self._pool.shutdown(wait=False, cancel_futures=True)
        return self.summary()

    def summary(self) -> dict:
        return {
            "samples": len(self.samples),
            "observed_s": self.samples[-1]["t"] if self.samples else 0,
            "max_lost_pairs_at_a_sample": max((s["lost_pairs"] for s in self.samples), default=0),
            "distinct_pairs_lost": len(self.lost_pairs),
            "nodes_that_lost_a_block": len({n for n, _b in self.lost_pairs}),
            "max_unanswered": max((s["unanswered"] for s in self.samples), default=0),
        }
