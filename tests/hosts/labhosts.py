"""Real systemd test hosts with systemd-nspawn: template rootfs, bridge, boot, inventory, teardown.

The one tool the project uses for lab hosts (molecule scenarios and ``make lab``). Facts behind the
recipe: /work/shared/reference/test-hosts.md. Every host is a ``systemd-nspawn -b`` process on an
overlay of a cached template rootfs, with its own address on a bridge that reaches only this machine
(``ip_forward`` is never touched). Hosts are stopped by the PID recorded in the state directory.

CLI (see ``scripts/labhosts --help``)::

    labhosts template                       # build (or reuse) the cached template, print its path
    labhosts up --state-dir D --host n1:10.213.0.11:management ... [--bridge br --subnet cidr]
    labhosts up --state-dir D --spec lab.yml
    labhosts stop --state-dir D n1           # stop and forget one host
    labhosts status --state-dir D
    labhosts down --state-dir D
    labhosts limits --hosts 49               # check (and, as root, raise) the host limits N hosts need

``up`` checks the same limits before booting anything (see ``check_limits``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

CACHE_DIR = Path(os.environ.get("KSLAB_CACHE", "/var/cache/kubescale-lab"))
SUITE = "bookworm"
TEMPLATE_VERSION = 1  # bump when the template fixes below change
BASE_PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "iproute2", "ca-certificates",
]
# Preinstalled so the hosts need no network: what the roles install.
ROLE_PACKAGES = [
    "etcd-server", "etcd-client", "bird2", "python3-apt", "python3-cryptography", "python3-cffi-backend",
    "curl", "procps",
]
# Units a package starts by itself; roles enable what they need (e.g. the lab's legacy etcd).
MASKED_UNITS = ["etcd.service", "bird.service"]
DEFAULT_BRIDGE = "br-kslab"
DEFAULT_SUBNET = "10.213.0.0/24"
SSH_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"


class LabError(Exception):
    """A lab operation failed; the message says what and why."""


# ---------------------------------------------------------------- host limits
# What one booted host takes from the machine, measured on the 9-host lab (`make lab`, Debian 12
# hosts, during site.yml): 8 inotify instances per host (systemd, journald, logind, networkd, dbus
# and the systemd-nspawn process; every container runs as root, so they all count against root's
# fs.inotify.max_user_instances, 128 by default: 16 hosts), 28-37 inotify watches, 63-69 MB RSS for
# a worker, proxy or reflector and about 105 MB where etcd runs. Estimates with room: 10 instances, 256 watches,
# 128 MB. A Linux bridge takes at most 1024 ports (BR_MAX_PORTS), one per host.
INOTIFY_INSTANCES_PER_HOST = 10
INOTIFY_WATCHES_PER_HOST = 256
MEMORY_MB_PER_HOST = 128
BRIDGE_MAX_PORTS = 1024
LIMIT_MARGIN = 1.25  # raise to what is needed plus a quarter
INOTIFY_SYSCTLS = {"instances": "fs.inotify.max_user_instances", "watches": "fs.inotify.max_user_watches"}


@dataclass
class Machine:
    """The machine's side of the limits: maxima and what is in use now."""

    max_instances: int
    used_instances: int
    max_watches: int
    used_watches: int
    bridge_ports: int  # ports on the lab's bridge now (0 when it does not exist)
    mem_available_mb: int
    root: bool


@dataclass
class LimitPlan:
    raise_to: dict[str, tuple[int, int]] = field(default_factory=dict)  # sysctl -> (now, new)
    problems: list[str] = field(default_factory=list)  # what cannot be raised from here


def plan_limits(hosts: int, m: Machine) -> LimitPlan:
    """What booting ``hosts`` more hosts needs: sysctls to raise (root) and problems it cannot fix."""
    plan = LimitPlan()
    for kind, per_host, maximum, used in (
            ("instances", INOTIFY_INSTANCES_PER_HOST, m.max_instances, m.used_instances),
            ("watches", INOTIFY_WATCHES_PER_HOST, m.max_watches, m.used_watches)):
        need = used + hosts * per_host
        if need <= maximum:
            continue
        key = INOTIFY_SYSCTLS[kind]
        new = int(need * LIMIT_MARGIN)
        if m.root:
            plan.raise_to[key] = (maximum, new)
        else:
            plan.problems.append(f"{key} is {maximum}, {hosts} hosts need about {need} ({used} in use + "
                                 f"{per_host} per host): run as root, or sysctl -w {key}={new}")
    if m.bridge_ports + hosts > BRIDGE_MAX_PORTS:
        plan.problems.append(f"a Linux bridge takes at most {BRIDGE_MAX_PORTS} ports: {m.bridge_ports} in use + "
                             f"{hosts} hosts is too many; use fewer hosts or a second lab on another bridge")
    need_mb = hosts * MEMORY_MB_PER_HOST
    if need_mb > m.mem_available_mb:
        plan.problems.append(f"memory: {hosts} hosts need about {need_mb} MB ({MEMORY_MB_PER_HOST} MB each), "
                             f"{m.mem_available_mb} MB available; use fewer hosts (KSLAB_WORKERS)")
    return plan


def _inotify_in_use(uid: int = 0) -> tuple[int, int]:
    """(inotify instances, watches) held by processes of ``uid`` now."""
    instances = watches = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if proc.stat().st_uid != uid:
                continue
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) == "anon_inode:inotify":
                    instances += 1
                    info = (proc / "fdinfo" / fd.name).read_text()
                    watches += sum(1 for ln in info.splitlines() if ln.startswith("inotify wd:"))
        except OSError:  # processes come and go
            continue
    return instances, watches


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_machine(bridge: str) -> Machine:
    instances, watches = _inotify_in_use(os.getuid())
    ports = Path(f"/sys/class/net/{bridge}/brif")
    meminfo = dict(ln.split(":", 1) for ln in Path("/proc/meminfo").read_text().splitlines() if ":" in ln)
    return Machine(
        max_instances=int(_sysctl_path(INOTIFY_SYSCTLS["instances"]).read_text()), used_instances=instances,
        max_watches=int(_sysctl_path(INOTIFY_SYSCTLS["watches"]).read_text()), used_watches=watches,
        bridge_ports=len(list(ports.iterdir())) if ports.is_dir() else 0,
        mem_available_mb=int(meminfo["MemAvailable"].split()[0]) // 1024, root=os.geteuid() == 0)


def check_limits(hosts: int, bridge: str, machine: Machine | None = None) -> list[str]:
    """Check the limits ``hosts`` new hosts need; raise the inotify ones as root. Lines saying what was done.

    Raises LabError naming every limit that cannot be raised from here, before anything boots."""
    plan = plan_limits(hosts, machine or read_machine(bridge))
    if plan.problems:
        raise LabError("host limits too low for this lab:\n  " + "\n  ".join(plan.problems))
    done = []
    for key, (old, new) in plan.raise_to.items():
        _sysctl_path(key).write_text(f"{new}\n")
        done.append(f"raised {key} from {old} to {new} for {hosts} hosts (until reboot; to keep it: "
                    f"echo '{key} = {new}' > /etc/sysctl.d/90-kslab.conf)")
    return done


@dataclass
class Host:
    name: str
    ip: str
    groups: list[str] = field(default_factory=list)
    pid: int = 0
    vars: dict = field(default_factory=dict)  # extra inventory variables (e.g. calico_rack)


@dataclass
class State:
    bridge: str = DEFAULT_BRIDGE
    subnet: str = DEFAULT_SUBNET
    bridge_created: bool = False
    template: str = ""
    hosts: dict[str, Host] = field(default_factory=dict)


def log(msg: str) -> None:
    print(f"labhosts: {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, check=False, text=True, capture_output=True, **kw)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc


# ---------------------------------------------------------------- template


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources)."""
    candidates = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in candidates:
        uris, suites = [], []
        for line in path.read_text().splitlines():
            if line.startswith("URIs:"):
                uris = line.split()[1:]
            elif line.startswith("Suites:"):
                suites = line.split()[1:]
            elif not line.strip():
                if SUITE in suites and uris:
                    return uris[0]
                uris, suites = [], []
        if SUITE in suites and uris:
            return uris[0]
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]:
        if path.exists():
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "deb" and SUITE in parts:
                    return next(p for p in parts[1:] if "://" in p)
    return "http://deb.debian.org/debian"


def template_key(packages: list[str]) -> str:
    blob = json.dumps({"suite": SUITE, "packages": sorted(packages), "v": TEMPLATE_VERSION})
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def template_path(packages: list[str] | None = None) -> Path:
    packages = packages or BASE_PACKAGES + ROLE_PACKAGES
    return CACHE_DIR / f"{SUITE}-{template_key(packages)}" / "rootfs"


def ensure_template(packages: list[str] | None = None) -> Path:
    """Return the cached template rootfs for ``packages``; build it once (under a lock) if missing."""
    packages = packages or BASE_PACKAGES + ROLE_PACKAGES
    rootfs = template_path(packages)
    done = rootfs.parent / "complete"
    if done.exists():
        return rootfs
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return rootfs
        build = rootfs.parent / "rootfs.build"
        if build.exists():
            shutil.rmtree(build)
        build.mkdir(parents=True)
        mirror = apt_mirror()
        log(f"building template {rootfs} from {mirror} (about a minute)")
        start = time.monotonic()
        run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
             SUITE, str(build), mirror])
        fix_template(build)
        if rootfs.exists():
            shutil.rmtree(rootfs)
        build.rename(rootfs)
        (rootfs.parent / "packages.txt").write_text("\n".join(sorted(packages)) + "\n")
        done.write_text(f"{time.time()}\n")
        log(f"template ready in {time.monotonic() - start:.0f}s")
    return rootfs


def fix_template(root: Path) -> None:
    """The fixes of test-hosts.md: per-host identity at boot, networkd, no self-starting daemons."""
    (root / "etc/hostname").unlink(missing_ok=True)
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    dbus_id.parent.mkdir(parents=True, exist_ok=True)
    dbus_id.unlink(missing_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    dropin = root / "etc/systemd/system/ssh.service.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "hostkeys.conf").write_text(
        "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n")
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    run(["chroot", str(root), "systemctl", "enable", "systemd-networkd"])
    for unit in MASKED_UNITS:
        run(["chroot", str(root), "systemctl", "disable", unit], check=False)
        run(["chroot", str(root), "systemctl", "mask", unit])
    # Hosts have no route beyond this machine: apt must not hang on the network.
    (root / "etc/apt/apt.conf.d/99kslab").write_text('Acquire::Retries "0";\n')


# ---------------------------------------------------------------- state


class Lab:
    """Hosts of one lab, described by the state directory."""

    def __init__(self, state_dir: str | Path):
        self.dir = Path(state_dir).resolve()
        self.state_file = self.dir / "state.json"
        self.key = self.dir / "id_ed25519"
        self.inventory = self.dir / "inventory.yml"
        self.state = self._load()

    def _load(self) -> State:
        if not self.state_file.exists():
            return State()
        raw = json.loads(self.state_file.read_text())
        hosts = {n: Host(**h) for n, h in raw.pop("hosts", {}).items()}
        return State(hosts=hosts, **raw)

    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        data = asdict(self.state)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.state_file)

    # -------------------------------------------------------------- pieces

    def ensure_key(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kubescale-lab", "-f", str(self.key)])
        os.chmod(self.key, 0o600)

    def gateway(self) -> str:
        net = ipaddress.ip_network(self.state.subnet)
        return str(next(net.hosts()))

    def ensure_bridge(self) -> None:
        br, net = self.state.bridge, ipaddress.ip_network(self.state.subnet)
        addr = f"{self.gateway()}/{net.prefixlen}"
        if run(["ip", "link", "show", br], check=False).returncode != 0:
            run(["ip", "link", "add", br, "type", "bridge"])
            self.state.bridge_created = True
            self._save()
        shown = run(["ip", "-o", "-4", "addr", "show", "dev", br]).stdout
        if addr not in shown:
            run(["ip", "addr", "add", addr, "dev", br])
        run(["ip", "link", "set", br, "up"])

    def remove_bridge(self) -> None:
        if self.state.bridge_created and run(["ip", "link", "show", self.state.bridge], check=False).returncode == 0:
            run(["ip", "link", "del", self.state.bridge])
        self.state.bridge_created = False

    def host_dir(self, name: str) -> Path:
        return self.dir / "hosts" / name

    def alive(self, host: Host) -> bool:
        """True when the recorded PID is still this host's systemd-nspawn (guards against PID reuse)."""
        if not host.pid:
            return False
        try:
            cmdline = Path(f"/proc/{host.pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return bool(cmdline) and cmdline[0].endswith(b"systemd-nspawn") and host.name.encode() in cmdline

    def _mount(self, name: str) -> Path:
        hdir = self.host_dir(name)
        upper, work, merged = hdir / "upper", hdir / "work", hdir / "merged"
        for d in (upper, work, merged):
            d.mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(merged):
            run(["mount", "-t", "overlay", "overlay", "-o",
                 f"lowerdir={self.state.template},upperdir={upper},workdir={work}", str(merged)])
        return merged

    def _umount(self, name: str) -> None:
        merged = self.host_dir(name) / "merged"
        for _unused in range(20):
            if not os.path.ismount(merged):
                return
            if run(["umount", str(merged)], check=False).returncode == 0:
                return
            time.sleep(0.25)
        run(["umount", "-l", str(merged)])

    def _personalise(self, host: Host, root: Path) -> None:
        net = ipaddress.ip_network(self.state.subnet)
        netdir = root / "etc/systemd/network"
        netdir.mkdir(parents=True, exist_ok=True)
        (netdir / "10-host0.network").write_text(
            f"[Match]\nName=host0\n\n[Network]\nAddress={host.ip}/{net.prefixlen}\n"
            f"Gateway={self.gateway()}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n")
        mid = root / "etc/machine-id"
        if not mid.read_text().strip():
            mid.write_text(uuid.uuid4().hex + "\n")
        ssh = root / "root/.ssh"
        ssh.mkdir(mode=0o700, exist_ok=True)
        auth = ssh / "authorized_keys"
        auth.write_text(self.key.with_suffix(".pub").read_text())
        auth.chmod(0o600)
        self._write_hosts(root)

    def _write_hosts(self, root: Path) -> None:
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
        lines += [f"{h.ip} {h.name}" for h in self.state.hosts.values()]
        (root / "etc/hosts").write_text("\n".join(lines) + "\n")

    def _boot(self, host: Host) -> None:
        root = self._mount(host.name)
        self._personalise(host, root)
        with open(self.host_dir(host.name) / "console.log", "ab") as logf:
            proc = subprocess.Popen(
                ["systemd-nspawn", "-b", "-D", str(root), "-M", host.name,
                 f"--network-bridge={self.state.bridge}", "--register=no", "--keep-unit",
                 "--console=read-only"],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        host.pid = proc.pid
        self._save()

    def ssh_cmd(self, host: Host, *cmd: str) -> list[str]:
        return ["ssh", "-i", str(self.key), *SSH_ARGS.split(), "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=2", f"root@{host.ip}", *cmd]

    def _wait_ssh(self, host: Host, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive(host):
                raise LabError(f"host {host.name} exited during boot; see {self.host_dir(host.name)}/console.log")
            with contextlib.suppress(OSError), socket.create_connection((host.ip, 22), timeout=1):
                if run(self.ssh_cmd(host, "true"), check=False).returncode == 0:
                    return
            time.sleep(0.3)
        raise LabError(f"host {host.name} ({host.ip}) not reachable by SSH within {timeout:.0f}s")

    def _stop(self, host: Host, timeout: float = 15.0) -> None:
        if self.alive(host):
            os.kill(host.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.alive(host) and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.alive(host):
                os.kill(host.pid, signal.SIGKILL)
                time.sleep(0.5)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(host.pid, os.WNOHANG)
        host.pid = 0
        self._umount(host.name)

    # -------------------------------------------------------------- commands

    def validate(self, hosts: list[Host]) -> None:
        net = ipaddress.ip_network(self.state.subnet)
        gw = self.gateway()
        seen_ip: dict[str, str] = {}
        for h in hosts:
            if not h.name or not all(c.isalnum() or c in "-" for c in h.name):
                raise LabError(f"host name {h.name!r}: use letters, digits and '-'")
            ip = ipaddress.ip_address(h.ip)
            if ip not in net or h.ip == gw:
                raise LabError(f"host {h.name}: ip {h.ip} must be in {net} and not the gateway {gw}")
            if seen_ip.setdefault(h.ip, h.name) != h.name:
                raise LabError(f"host {h.name}: ip {h.ip} already used by {seen_ip[h.ip]}")
        for h in hosts:
            old = self.state.hosts.get(h.name)
            if old and old.ip != h.ip and self.alive(old):
                raise LabError(f"host {h.name} is running with ip {old.ip}, not {h.ip}; stop it first")
        for name, old in self.state.hosts.items():
            if self.alive(old) and old.ip in seen_ip and seen_ip[old.ip] != name:
                raise LabError(f"ip {old.ip} is used by running host {name}")

    def up(self, hosts: list[Host], bridge: str | None = None, subnet: str | None = None) -> None:
        """Boot the hosts that are not running yet; keep running ones; write the inventory."""
        running = any(self.alive(h) for h in self.state.hosts.values())
        if running and ((bridge and bridge != self.state.bridge) or (subnet and subnet != self.state.subnet)):
            raise LabError("lab is running on another bridge/subnet; run down first")
        if bridge:
            self.state.bridge = bridge
        if subnet:
            self.state.subnet = subnet
        self.validate(hosts)
        to_boot = [h for h in hosts if not (self.state.hosts.get(h.name) and self.alive(self.state.hosts[h.name]))]
        for line in check_limits(len(to_boot), self.state.bridge):
            log(line)
        self.state.template = str(ensure_template())
        self.ensure_key()
        self.ensure_bridge()
        booting = []
        for h in hosts:
            old = self.state.hosts.get(h.name)
            if old and self.alive(old):
                old.groups, old.vars = h.groups, h.vars
                continue
            self.state.hosts[h.name] = h
            booting.append(h)
        self._save()
        for h in booting:
            self._boot(h)
            log(f"booting {h.name} ({h.ip}) pid {h.pid}")
        for h in booting:
            self._wait_ssh(h)
        # Every host knows every other by name (the set may have grown).
        for h in self.state.hosts.values():
            if self.alive(h):
                self._write_hosts(self.host_dir(h.name) / "merged")
        self.write_inventory()
        log(f"{len(booting)} booted, {len(hosts) - len(booting)} already running; inventory {self.inventory}")

    def stop(self, names: list[str]) -> None:
        for name in names:
            host = self.state.hosts.pop(name, None)
            if host is None:
                continue
            self._stop(host)
            shutil.rmtree(self.host_dir(name), ignore_errors=True)
            self._save()
            log(f"stopped {name}")
        self.write_inventory()

    def down(self) -> None:
        """Stop every host by PID, unmount, remove the bridge this lab created. Safe to repeat."""
        for host in list(self.state.hosts.values()):
            self._stop(host)
            self._save()
        for host in list(self.state.hosts):
            shutil.rmtree(self.host_dir(host), ignore_errors=True)
        self.state.hosts.clear()
        self.remove_bridge()
        self._save()
        self.inventory.unlink(missing_ok=True)
        log("down")

    def status(self) -> dict:
        return {
            "state_dir": str(self.dir), "bridge": self.state.bridge, "subnet": self.state.subnet,
            "template": self.state.template, "inventory": str(self.inventory),
            "hosts": {n: {"ip": h.ip, "groups": h.groups, "pid": h.pid, "running": self.alive(h)}
                      for n, h in self.state.hosts.items()},
        }

    def write_inventory(self) -> None:
        hosts = {n: h for n, h in self.state.hosts.items() if h.pid}
        groups: dict[str, dict] = {}
        for n, h in hosts.items():
            for g in h.groups:
                groups.setdefault(g, {"hosts": {}})["hosts"][n] = None
        # Connection settings per host (not all.vars): the implicit localhost must keep its own
        # interpreter for tasks delegated to the controller.
        conn = {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": SSH_ARGS,
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        inv = {"all": {
            "hosts": {n: {"ansible_host": h.ip, **h.vars, **conn} for n, h in hosts.items()},
            "children": groups,
        }}
        self.dir.mkdir(parents=True, exist_ok=True)
        self.inventory.write_text("# written by labhosts; do not edit\n" + yaml.safe_dump(inv, sort_keys=False))


# ---------------------------------------------------------------- CLI


def parse_host(spec: str) -> Host:
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise LabError(f"--host {spec!r}: expected NAME:IP[:GROUP,GROUP]")
    groups = [g for g in parts[2].split(",") if g] if len(parts) == 3 else []
    return Host(name=parts[0], ip=parts[1], groups=groups)


def load_spec(path: str) -> tuple[list[Host], str | None, str | None]:
    """A YAML file: ``{bridge, subnet, hosts: [{name, ip, groups: [..]}]}``."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    hosts = [Host(name=h["name"], ip=h["ip"], groups=list(h.get("groups", [])), vars=dict(h.get("vars") or {}))
             for h in data.get("hosts", [])]
    return hosts, data.get("bridge"), data.get("subnet")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="labhosts", description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--state-dir", default=os.environ.get("KSLAB_STATE_DIR", ".lab/labhosts"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("template", help="build or reuse the cached template rootfs")
    up = sub.add_parser("up", help="boot hosts (idempotent) and write the inventory")
    up.add_argument("--host", action="append", default=[], help="NAME:IP[:GROUP,GROUP]")
    up.add_argument("--spec", help="YAML file with bridge, subnet and hosts")
    up.add_argument("--bridge")
    up.add_argument("--subnet")
    st = sub.add_parser("stop", help="stop and forget some hosts")
    st.add_argument("names", nargs="+")
    sub.add_parser("down", help="stop all hosts, unmount, remove the bridge")
    sub.add_parser("status", help="print the lab state as JSON")
    lim = sub.add_parser("limits", help="check (and as root raise) the host limits for N more hosts")
    lim.add_argument("--hosts", type=int, required=True)
    lim.add_argument("--bridge", default=DEFAULT_BRIDGE)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "template":
            print(ensure_template())
            return 0
        if args.cmd == "limits":
            for line in check_limits(args.hosts, args.bridge) or [f"host limits fine for {args.hosts} hosts"]:
                print(line)
            return 0
        lab = Lab(args.state_dir)
        if args.cmd == "up":
            hosts = [parse_host(s) for s in args.host]
            bridge, subnet = args.bridge, args.subnet
            if args.spec:
                spec_hosts, sb, ss = load_spec(args.spec)
                hosts, bridge, subnet = spec_hosts + hosts, bridge or sb, subnet or ss
            if not hosts:
                raise LabError("up: give --host or --spec")
            try:
                lab.up(hosts, bridge, subnet)
            except BaseException:
                log("up failed; hosts booted so far keep running (run down to remove them)")
                raise
            print(lab.inventory)
        elif args.cmd == "stop":
            lab.stop(args.names)
        elif args.cmd == "down":
            lab.down()
        elif args.cmd == "status":
            print(json.dumps(lab.status(), indent=2))
    except LabError as exc:
        print(f"labhosts: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
