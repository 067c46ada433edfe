"""Network-namespace lab: one namespace per BGP speaker, all on one L2 segment made of bridges.

Layout: a hub namespace ``<prefix>hub`` holds a spine bridge and leaf bridges (a Linux bridge
takes at most 1,023 ports, so every leaf carries at most ``ports_per_bridge`` hosts and one
uplink to the spine). Each host namespace ``<prefix><i>`` gets one veth (``eth0``) into a leaf,
a fixed MAC derived from its address, and *permanent* neighbour entries for the peers it talks
to: permanent entries are exempt from the kernel's neighbour-table garbage collection, whose
``gc_thresh3`` (1,024 by default, one limit shared by all namespaces) a 1,000-speaker lab would
otherwise overflow. Nothing is routed out of the hub; every address lives only in here.

Every BIRD runs in the foreground as a direct child (``nsenter`` execs it, so the PID we hold
is BIRD's), at a raised nice value so that the driver and the teardown keep getting CPU.
:meth:`Lab.teardown` kills by PID and deletes the namespaces; it is safe to call twice.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ansible_collections.kubescale.calico.plugins.module_utils.bird import BirdClient, BirdError


def mac_for(ip: str) -> str:
    """A locally administered MAC address derived from an IPv4 address."""
    octets = ipaddress.IPv4Address(ip).packed
    return "02:00:" + ":".join(f"{b:02x}" for b in octets)


def _ip_batch(lines: list[str], netns: str | None = None) -> None:
    if not lines:
        return
    cmd = ["ip", "-force", "-batch", "-"]
    if netns:
        cmd[1:1] = ["-n", netns]
    proc = subprocess.run(cmd, input="\n".join(lines) + "\n", text=True, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ip -batch in {netns or 'root ns'} failed: {proc.stderr.strip()[:500]}")


@dataclass
class Host:
    name: str
    ip: str
    netns: str
    index: int
    socket: str = ""
    config: str = ""
    proc: subprocess.Popen | None = None
    started_at: float = 0.0


@dataclass
class Lab:
    """A set of namespaces on one L2 segment, and the BIRD daemons running in them."""

    workdir: Path
    prefix: str = field(default_factory=lambda: f"kbl{os.getpid() % 100000}-")
    prefixlen: int = 15
    ports_per_bridge: int = 500
    nice: int = 10
    hosts: dict[str, Host] = field(default_factory=dict)
    leaves: int = 0

    @property
    def hub(self) -> str:
        return f"{self.prefix}hub"

    # -- network ---------------------------------------------------------------------------
    def create(self, hosts: list[tuple[str, str]]) -> None:
        """Create the hub, the bridges and one namespace per ``(name, ip)``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        _ip_batch([f"netns add {self.hub}"])
        _ip_batch(["link add br0 type bridge", "link set br0 up"], self.hub)
        self.add_hosts(hosts)

    def add_hosts(self, hosts: list[tuple[str, str]]) -> None:
        """One more namespace per ``(name, ip)`` on the segment (a node that joins later)."""
        new = []
        for name, ip in hosts:
            self.hosts[name] = Host(name, ip, f"{self.prefix}{len(self.hosts)}", len(self.hosts))
            new.append(self.hosts[name])
        _ip_batch([f"netns add {h.netns}" for h in new])
        hub = []
        for h in new:
            leaf = 1 + h.index // self.ports_per_bridge
            if leaf > self.leaves:
                self.leaves = leaf
                hub += [
                    f"link add br{leaf} type bridge",
                    f"link set br{leaf} up",
                    f"link add up{leaf} type veth peer name dn{leaf}",
                    f"link set up{leaf} master br{leaf} up",
                    f"link set dn{leaf} master br0 up",
                ]
            hub += [
                f"link add h{h.index} type veth peer name eth0 address {mac_for(h.ip)} netns {h.netns}",
                f"link set h{h.index} master br{leaf} up",
            ]
        _ip_batch(hub, self.hub)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(self._setup_host, new))

    def _setup_host(self, h: Host) -> None:
        _ip_batch(["link set lo up", f"addr add {h.ip}/{self.prefixlen} dev eth0", "link set eth0 up"], h.netns)

    def add_neighbours(self, name: str, peers: list[str]) -> None:
        """Permanent ARP entries in ``name``'s namespace for the given peer hosts."""
        h = self.hosts[name]
        _ip_batch(
            [
                f"neigh replace {self.hosts[p].ip} lladdr {mac_for(self.hosts[p].ip)} dev eth0 nud permanent"
                for p in peers
            ],
            h.netns,
        )

    # -- daemons ---------------------------------------------------------------------------
    def start(self, name: str, config: str, bird: str = "bird", nofile: int = 4096) -> Host:
        """Write ``config`` and start BIRD for host ``name`` in its namespace."""
        h = self.hosts[name]
        h.config = str(self.workdir / f"{name}.conf")
        h.socket = str(self.workdir / f"{name}.ctl")
        Path(h.config).write_text(config)
        log = open(self.workdir / f"{name}.out", "ab")  # noqa: SIM115 - handed to the child
        # nice, prlimit and nsenter each exec the next program: the PID we keep is BIRD's
        h.proc = subprocess.Popen(
            [
                "nice",
                "-n",
                str(self.nice),
                "prlimit",
                f"--nofile={nofile}:{nofile}",
                "nsenter",
                f"--net=/run/netns/{h.netns}",
                "--",
                bird,
                "-f",
                "-c",
                h.config,
                "-s",
                h.socket,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            close_fds=True,
        )
        log.close()
        h.started_at = time.monotonic()
        return h

    def wait_sockets(self, names: list[str], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            h = self.hosts[name]
            while not os.path.exists(h.socket):
                if h.proc and h.proc.poll() is not None:
                    out = (self.workdir / f"{name}.out").read_text()[-500:]
                    raise RuntimeError(f"BIRD for {name} exited with {h.proc.returncode}: {out}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"BIRD for {name} did not open {h.socket} in {timeout} s")
                time.sleep(0.05)

    def reconfigure(self, name: str, config: str) -> str:
        """Write ``config`` and have the running BIRD load it (``birdc configure``); returns its answer."""
        h = self.hosts[name]
        Path(h.config).write_text(config)
        with BirdClient(h.socket, 60) as client:
            return client.configure()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        h = self.hosts[name]
        if h.proc and h.proc.poll() is None:
            h.proc.send_signal(sig)
            h.proc.wait(timeout=30)

    def query(self, name: str, what: str, timeout: float = 10.0):
        """``what`` is one of status/protocols/route_count; returns None if BIRD did not answer."""
        try:
            with BirdClient(self.hosts[name].socket, timeout) as client:
                return getattr(client, what)()
        except BirdError:
            return None

    def pss_kib(self, name: str) -> int:
        h = self.hosts[name]
        if not h.proc or h.proc.poll() is not None:
            return 0
        try:
            for line in Path(f"/proc/{h.proc.pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        except OSError:
            return 0
        return 0

    def teardown(self) -> None:
        """Stop every BIRD by PID (TERM, then KILL) and delete the namespaces."""
        procs = [h.proc for h in self.hosts.values() if h.proc and h.proc.poll() is None]
        for p in procs:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=30)
        existing = set(
            subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout.split()
        )
        names = [h.netns for h in self.hosts.values()] + [self.hub]
        _ip_batch([f"netns del {n}" for n in names if n in existing])
        for h in self.hosts.values():
            h.proc = None
