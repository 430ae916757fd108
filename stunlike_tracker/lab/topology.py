"""A NAT lab made of Linux network namespaces, veth pairs and nftables.

::

    Topology([LanSpec("a", "full-cone"), LanSpec("b", "port-restricted-cone", hosts=2),
              LanSpec("open", "none")])

                      namespace stl-<pid>-<n>-pub: a router
          203.0.113.1/32 on every link, a /32 route per public address,
                   default route: blackhole; nothing else
       p0 |            p1 |            p2 |            p3 |           p4 |
     trk .2       turn .3 + .4      open .12      nat-a wan .10   nat-b wan .11
     (tracker)    (coturn)          (none: no     nft full-cone   nft port-restricted
                                    NAT)          lan0 10.1.0.1   lan0 10.2.0.1  lan1
                                                      |               |            |
                                                  a 10.1.0.2    b-1 10.2.0.2  b-2 10.2.0.3

Every link is a veth pair, every address a /32 with a device route to the
peer: there is no bridge, because a bridge port only forwards once the
kernel's linkwatch has marked its link operational, up to a second after
``link set up`` (measured: the first packet through a fresh bridged lab
waited 1.0 s). Two hosts behind one NAT (``b-1``, ``b-2``) reach each other
through the NAT's router, not a switch.

Every namespace, link and address is created inside the lab's namespaces:
nothing is added to the namespace the lab runs from, so deleting the
namespaces (after killing the processes inside them) removes everything.
Namespace names are ``stl-<pid>-<n>-<role>`` where ``<pid>`` is the owning
process and ``<n>`` counts labs within it; :func:`cleanup_stale` removes the
namespaces of owners that no longer exist (the owner's start time is kept
under ``/run/stunlike-lab`` so a recycled pid is recognised).

The public namespace routes between the public hosts and drops everything
else through a ``blackhole`` default route: a process sending to an
unroutable (private) address must not get an error back, or coturn's relay
allocation breaks after one such send (FIELD-NOTES, "default-route tip").
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from stunlike_tracker.lab import nat

PREFIX: Final = "stl"
NAT_TYPES: Final = ("none", *nat.NAT_BEHAVIOURS)
"""Every NAT label a LAN accepts (``none``: a host with a public address)."""

PUBLIC_NET: Final = ipaddress.IPv4Network("203.0.113.0/24")  # TEST-NET-3
PUBLIC_GATEWAY: Final = "203.0.113.1"
TRACKER_ADDR: Final = "203.0.113.2"
TURN_ADDRS: Final = ("203.0.113.3", "203.0.113.4")
FIRST_LAN_PUBLIC: Final = 10
# Dual-stack labs (``Topology(ipv6=True)``): IPv6 without NAT, 2001:db8::/32
# (documentation). The public router is 2001:db8::1, ``trk`` 2001:db8::2,
# ``turn`` 2001:db8::3, LAN *i*'s NAT (or public host) 2001:db8::(10+i) on
# the public side, and its hosts 2001:db8:(i+1)::2, ::3 ... behind it.
PUBLIC6_GATEWAY: Final = "2001:db8::1"
TRACKER_ADDR6: Final = "2001:db8::2"
TURN_ADDR6: Final = "2001:db8::3"
MAX_LANS: Final = 200
STATE_DIR: Final = Path("/run/stunlike-lab")
NETNS_DIR: Final = Path("/run/netns")

_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_NS_RE: Final = re.compile(rf"^{PREFIX}-(\d+)-(\d+)-[a-z0-9-]+$")
_ROOT_LINK_RE: Final = re.compile(rf"^{PREFIX}-?\d+")
_SEQ = itertools.count()


class LabError(RuntimeError):
    """A lab command failed; the message holds the command and its stderr."""


@dataclasses.dataclass(frozen=True)
class LanSpec:
    """One private LAN: ``hosts`` hosts behind one NAT of type ``nat``.

    ``name`` is short (lowercase letter then letters/digits, ≤ 8 chars) and
    names the host too: ``name`` when alone, ``name-1`` … ``name-N`` when
    several hosts share the NAT (hairpin case). ``nat="none"`` gives one host
    a public address and no NAT. ``loss_pct`` drops that share of packets in
    each direction across the NAT (or at the public host).
    """

    name: str
    nat: str
    hosts: int = 1
    loss_pct: int = 0

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"LAN name {self.name!r} must match {_NAME_RE.pattern}")
        if self.name in ("pub", "trk", "turn"):
            raise ValueError(f"LAN name {self.name!r} is reserved")
        if self.nat not in NAT_TYPES:
            raise ValueError(f"unknown NAT type {self.nat!r}; known: {NAT_TYPES}")
        if not 1 <= self.hosts <= 50:
            raise ValueError("a LAN has 1..50 hosts")
        if self.hosts > 1 and self.nat not in nat.MASQUERADING:
            raise ValueError(
                f"{self.hosts} hosts behind one NAT need one of {sorted(nat.MASQUERADING)}"
            )
        nat.loss_rules(self.loss_pct)  # validates the range

    def host_names(self) -> list[str]:
        if self.hosts == 1:
            return [self.name]
        return [f"{self.name}-{i}" for i in range(1, self.hosts + 1)]


@dataclasses.dataclass(frozen=True)
class Host:
    """A namespace processes can run in.

    ``addresses`` are the host's own interface addresses (private ones behind
    a NAT); ``public_address`` is what the public network sees: the NAT's
    address, or the host's own for public hosts.
    """

    name: str
    netns: str
    addresses: tuple[str, ...]
    public_address: str
    lan: str | None = None
    nat: str | None = None
    address6: str | None = None
    """The host's global IPv6 address in a dual-stack lab (no NAT on IPv6)."""

    @property
    def address(self) -> str:
        return self.addresses[0]


@dataclasses.dataclass(frozen=True)
class _Nat:
    lan: LanSpec
    netns: str
    wan_addr: str
    lan_subnet: ipaddress.IPv4Network
    wan_addr6: str | None = None
    lan_gateway6: str | None = None


# ---------------------------------------------------------------------------
# command helpers


def _cmd(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, check=False, timeout=60
    )
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _parallel(jobs: Iterable[tuple[Sequence[str], str | None]]) -> None:
    """Run independent commands concurrently; raise on the first failure."""
    procs: list[tuple[Sequence[str], subprocess.Popen[str], str | None]] = []
    for argv, stdin in jobs:
        p = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append((argv, p, stdin))
    errors = []
    for argv, p, stdin in procs:
        _, err = p.communicate(stdin, timeout=60)
        if p.returncode != 0:
            errors.append(f"{' '.join(argv)} failed ({p.returncode}): {err.strip()}")
    if errors:
        raise LabError("; ".join(errors))


def _batch(netns: str | None, lines: list[str]) -> tuple[Sequence[str], str]:
    head = ["ip"] if netns is None else ["ip", "-n", netns]
    return [*head, "-batch", "-"], "\n".join(lines) + "\n"


def _sysctl(netns: str, settings: dict[str, str]) -> tuple[Sequence[str], None]:
    # `-e`: ignore keys this kernel lacks.
    args = [f"{k}={v}" for k, v in settings.items()]
    return ["ip", "netns", "exec", netns, "sysctl", "-q", "-e", "-w", *args], None


def _nft(netns: str, script: str) -> tuple[Sequence[str], str]:
    return ["ip", "netns", "exec", netns, "nft", "-f", "-"], script


# ---------------------------------------------------------------------------
# stale labs


def _proc_start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) comes after the parenthesised command name.
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_alive(pid: int) -> bool:
    start = _proc_start_time(pid)
    if start is None:
        return False
    try:
        recorded = (STATE_DIR / str(pid)).read_text().strip()
    except OSError:
        return True  # no record: be conservative, the pid exists
    return recorded == start


def list_lab_namespaces() -> list[str]:
    """Every namespace with the project prefix, from any run."""
    try:
        names = sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []
    return [n for n in names if _NS_RE.match(n)]


def _kill_netns_processes(namespaces: Iterable[str]) -> None:
    for ns in namespaces:
        out = _cmd(["ip", "netns", "pids", ns], check=False)
        for word in out.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(word), signal.SIGKILL)


def _delete_namespaces(namespaces: Sequence[str]) -> None:
    if not namespaces:
        return
    _kill_netns_processes(namespaces)
    # `-force`: keep going when one of them is already gone.
    _cmd(
        ["ip", "-force", "-batch", "-"],
        stdin="".join(f"netns del {ns}\n" for ns in namespaces),
        check=False,
    )


def cleanup_stale(*, include_live: bool = False) -> list[str]:
    """Remove the namespaces (and so every veth, route and nft table) of labs
    whose owning process is gone, killing the processes left inside them.

    With ``include_live`` the labs of running owners go too (``lab down
    --force``). Veths named ``stl<digits>...`` in the current namespace are
    removed as well, although the lab never creates any there. Returns what
    was removed.
    """
    doomed = []
    owners: set[int] = set()
    for ns in list_lab_namespaces():
        m = _NS_RE.match(ns)
        assert m is not None
        pid = int(m.group(1))
        if include_live or not _owner_alive(pid):
            doomed.append(ns)
            owners.add(pid)
    _delete_namespaces(doomed)
    removed = list(doomed)
    # Safety net: the lab creates no link in this namespace, but a veth
    # named like ours (``stl<digits>...``) here can only be a leftover.
    out = _cmd(["ip", "-o", "link", "show", "type", "veth"], check=False)
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) < 2:
            continue
        link = parts[1].strip().split("@", 1)[0]
        if _ROOT_LINK_RE.match(link):
            _cmd(["ip", "link", "del", "dev", link], check=False)
            removed.append(link)
    for pid in owners:
        if include_live or not _owner_alive(pid):
            with contextlib.suppress(OSError):
                (STATE_DIR / str(pid)).unlink()
    return removed


# ---------------------------------------------------------------------------
# the lab


class Topology:
    """A NAT lab; use as a context manager (``with Topology(lans) as lab:``).

    Fixed hosts: ``trk`` (tracker, 203.0.113.2) and ``turn`` (coturn, two
    addresses 203.0.113.3 and .4, as RFC 5780 discovery needs). Every
    :class:`LanSpec` adds a NAT namespace and its hosts. Processes started
    with :meth:`spawn` are killed at teardown.
    """

    def __init__(
        self, lans: Sequence[LanSpec] = (), *, prefix: str | None = None, ipv6: bool = False
    ) -> None:
        names = [lan.name for lan in lans]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate LAN names in {names}")
        if len(lans) > MAX_LANS:
            raise ValueError(f"at most {MAX_LANS} LANs")
        self.lans: tuple[LanSpec, ...] = tuple(lans)
        self.ipv6 = ipv6
        self.prefix = prefix or f"{PREFIX}-{os.getpid()}-{next(_SEQ)}"
        if not _NS_RE.match(self.prefix + "-x"):
            raise ValueError(f"prefix {self.prefix!r} must look like {PREFIX}-<pid>-<n>")
        self.hosts: dict[str, Host] = {}
        self._nats: dict[str, _Nat] = {}
        self._namespaces: list[str] = []
        self._procs: list[subprocess.Popen[Any]] = []
        self._up = False
        self.workdir: Path | None = None
        self.timings: dict[str, float] = {}
        self._plan()

    # -- naming and addressing -------------------------------------------

    def _ns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def _plan(self) -> None:
        v6 = self.ipv6
        self.hosts["trk"] = Host(
            "trk", self._ns("trk"), (TRACKER_ADDR,), TRACKER_ADDR, address6=_v6(v6, TRACKER_ADDR6)
        )
        self.hosts["turn"] = Host(
            "turn", self._ns("turn"), TURN_ADDRS, TURN_ADDRS[0], address6=_v6(v6, TURN_ADDR6)
        )
        for i, lan in enumerate(self.lans):
            public = str(PUBLIC_NET.network_address + FIRST_LAN_PUBLIC + i)
            public6 = _v6(v6, f"2001:db8::{FIRST_LAN_PUBLIC + i:x}")
            if lan.nat == "none":
                self.hosts[lan.name] = Host(
                    lan.name, self._ns(f"h-{lan.name}"), (public,), public, lan.name, "none",
                    address6=public6,
                )  # fmt: skip
                continue
            subnet = ipaddress.IPv4Network(f"10.{i + 1}.0.0/24")
            self._nats[lan.name] = _Nat(
                lan, self._ns(f"nat-{lan.name}"), public, subnet,
                wan_addr6=public6, lan_gateway6=_v6(v6, f"2001:db8:{i + 1:x}::1"),
            )  # fmt: skip
            for j, hname in enumerate(lan.host_names()):
                addr = str(subnet.network_address + 2 + j)
                self.hosts[hname] = Host(
                    hname, self._ns(f"h-{hname}"), (addr,), public, lan.name, lan.nat,
                    address6=_v6(v6, f"2001:db8:{i + 1:x}::{2 + j:x}"),
                )  # fmt: skip

    @property
    def namespaces(self) -> list[str]:
        """Every namespace of this lab (public, hosts and NATs)."""
        out = [self._ns("pub")]
        out += [h.netns for h in self.hosts.values()]
        out += [n.netns for n in self._nats.values()]
        return out

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise KeyError(f"no host {name!r}; hosts: {sorted(self.hosts)}") from None

    def address(self, name: str) -> str:
        """The host's (first) own address."""
        return self.host(name).address

    def public_address(self, name: str) -> str:
        """The address the public network sees for this host."""
        return self.host(name).public_address

    def lan_hosts(self) -> list[Host]:
        """Hosts that belong to a LAN (not ``trk`` or ``turn``)."""
        return [h for h in self.hosts.values() if h.lan is not None]

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Topology:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def up(self) -> Topology:
        """Create everything; on any failure remove what was created."""
        if self._up:
            return self
        t0 = time.monotonic()
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        start = _proc_start_time(os.getpid())
        (STATE_DIR / str(os.getpid())).write_text(f"{start}\n")
        self._up = True  # from here on, down() has work to do
        try:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
            self._build()
        except BaseException:
            self.down()
            raise
        self.timings["up_s"] = time.monotonic() - t0
        return self

    def _build(self) -> None:
        pub = self._ns("pub")
        self._namespaces = self.namespaces
        _cmd(["ip", "-batch", "-"], stdin="".join(f"netns add {ns}\n" for ns in self._namespaces))

        base = {
            "net.ipv6.conf.all.disable_ipv6": "1",
            "net.ipv6.conf.default.disable_ipv6": "1",
            "net.ipv4.conf.all.rp_filter": "0",
            "net.ipv4.conf.default.rp_filter": "0",
            "net.ipv4.conf.all.accept_redirects": "0",
            "net.ipv4.conf.default.accept_redirects": "0",
        }
        router = {
            **base,
            "net.ipv4.ip_forward": "1",
            # Hairpinned packets leave by the interface they came in on.
            "net.ipv4.conf.all.send_redirects": "0",
            "net.ipv4.conf.default.send_redirects": "0",
        }
        if self.ipv6:
            # No DAD: every address is usable the moment its link is up.
            # Hosts get no link-local address (addr_gen_mode 1), so peers
            # gather only their global one; routers keep theirs, because a
            # forwarded packet's neighbour solicitation is sent from it.
            v6 = {
                "net.ipv6.conf.all.disable_ipv6": "0",
                "net.ipv6.conf.default.disable_ipv6": "0",
                "net.ipv6.conf.all.accept_dad": "0",
                "net.ipv6.conf.default.accept_dad": "0",
                "net.ipv6.conf.all.accept_ra": "0",
                "net.ipv6.conf.default.accept_ra": "0",
            }
            base = {**base, **v6, "net.ipv6.conf.default.addr_gen_mode": "1"}
            router = {**router, **v6, "net.ipv6.conf.all.forwarding": "1"}
        routers = {pub, *(n.netns for n in self._nats.values())}
        _parallel(_sysctl(ns, router if ns in routers else base) for ns in self._namespaces)

        # Every link is a point-to-point veth between a host (or NAT) and
        # its router, addresses are /32 and routes name the device: no
        # bridge, so no bridge port waiting for the kernel's linkwatch to
        # mark the link operational (up to a second after `link set up`,
        # which would make the first packet through a fresh lab wait).
        #
        # Phase 1: links, each created from one lab namespace straight into
        # the other, so nothing passes through ours.
        per_ns: dict[str, list[str]] = {ns: ["link set dev lo up"] for ns in self._namespaces}
        per_ns[pub].append("route add blackhole default")
        if self.ipv6:
            per_ns[pub].append("route add blackhole ::/0")
        # (ns, its link, IPv4 addresses, IPv6 address, IPv6 prefix routed behind it)
        uplinks: list[tuple[str, str, tuple[str, ...], str | None, str | None]] = []
        for h in self.hosts.values():
            if h.nat in (None, "none"):
                uplinks.append((h.netns, "eth0", h.addresses, h.address6, None))
        for n in self._nats.values():
            behind = None
            if n.lan_gateway6 is not None:
                behind = str(ipaddress.IPv6Network(f"{n.lan_gateway6}/64", strict=False))
            uplinks.append((n.netns, "wan", (n.wan_addr,), n.wan_addr6, behind))
        for i, (ns, ifname, *_) in enumerate(uplinks):
            per_ns[ns].append(f"link add name {ifname} type veth peer name p{i} netns {pub}")
        lan_links: list[tuple[Host, _Nat, str]] = []
        for n in self._nats.values():
            for j, hname in enumerate(n.lan.host_names()):
                h = self.hosts[hname]
                lan_links.append((h, n, f"{nat.LAN_PREFIX}{j}"))
                per_ns[h.netns].append(
                    f"link add name eth0 type veth peer name {nat.LAN_PREFIX}{j} netns {n.netns}"
                )
        _parallel(_batch(ns, lines) for ns, lines in per_ns.items())

        # Phase 2: addresses and routes.
        per_ns = {ns: [] for ns in self._namespaces}
        gw = PUBLIC_GATEWAY
        gw6 = PUBLIC6_GATEWAY
        for i, (ns, ifname, addrs, addr6, behind6) in enumerate(uplinks):
            per_ns[pub] += [f"link set dev p{i} up", f"addr add {gw}/32 dev p{i}"]
            per_ns[pub] += [f"route add {a}/32 dev p{i}" for a in addrs]
            per_ns[ns] += [f"addr add {a}/32 dev {ifname}" for a in addrs]
            per_ns[ns] += [
                f"link set dev {ifname} up",
                f"route add {gw}/32 dev {ifname}",
                f"route add default via {gw} dev {ifname}",
            ]
            if addr6 is not None:
                per_ns[pub] += [
                    f"addr add {gw6}/128 dev p{i} nodad",
                    f"route add {addr6}/128 dev p{i}",
                ]
                if behind6 is not None:
                    per_ns[pub].append(f"route add {behind6} via {addr6} dev p{i}")
                per_ns[ns] += [
                    f"addr add {addr6}/128 dev {ifname} nodad",
                    f"route add {gw6}/128 dev {ifname}",
                    f"route add ::/0 via {gw6} dev {ifname}",
                ]
        for h, n, ifname in lan_links:
            lan_gw = str(n.lan_subnet.network_address + 1)
            per_ns[n.netns] += [
                f"link set dev {ifname} up",
                f"addr add {lan_gw}/32 dev {ifname}",
                f"route add {h.address}/32 dev {ifname}",
            ]
            per_ns[h.netns] += [
                f"addr add {h.address}/32 dev eth0",
                "link set dev eth0 up",
                f"route add {lan_gw}/32 dev eth0",
                f"route add default via {lan_gw} dev eth0",
            ]
            if h.address6 is not None and n.lan_gateway6 is not None:
                per_ns[n.netns] += [
                    f"addr add {n.lan_gateway6}/128 dev {ifname} nodad",
                    f"route add {h.address6}/128 dev {ifname}",
                ]
                per_ns[h.netns] += [
                    f"addr add {h.address6}/128 dev eth0 nodad",
                    f"route add {n.lan_gateway6}/128 dev eth0",
                    f"route add ::/0 via {n.lan_gateway6} dev eth0",
                ]
        _parallel(_batch(ns, lines) for ns, lines in per_ns.items() if lines)

        # Phase 3: NAT behaviours (and loss at public hosts).
        jobs = []
        for n in self._nats.values():
            hosts = [self.hosts[h].address for h in n.lan.host_names()]
            script = nat.nat_ruleset(
                n.lan.nat,
                wan_addr=n.wan_addr,
                lan_subnet=str(n.lan_subnet),
                hosts=hosts,
                loss_pct=n.lan.loss_pct,
            )
            jobs.append(_nft(n.netns, script))
            if self.ipv6:
                jobs.append(_nft(n.netns, nat.ipv6_firewall_ruleset()))
        for lan in self.lans:
            if lan.nat == "none" and lan.loss_pct:
                jobs.append(_nft(self.hosts[lan.name].netns, nat.public_host_ruleset(lan.loss_pct)))
        _parallel(jobs)

    def down(self) -> None:
        """Kill the lab's processes and delete its namespaces. Idempotent.

        A signal arriving meanwhile (KeyboardInterrupt, or the CLI's SIGTERM
        exception) does not cut the teardown short: each step is retried
        once and the first interruption is re-raised at the end.
        """
        if not self._up:
            return
        t0 = time.monotonic()
        interrupted: BaseException | None = None
        for step in (self._kill_processes, self._delete_own_namespaces, self._forget):
            for _attempt in range(2):
                try:
                    step()
                    break
                except BaseException as exc:
                    interrupted = interrupted or exc
        self._up = False
        self.timings["down_s"] = time.monotonic() - t0
        if interrupted is not None:
            raise interrupted

    def _kill_processes(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
        for p in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
        self._procs.clear()

    def _delete_own_namespaces(self) -> None:
        # Whatever else still runs inside (asyncio subprocesses, children of
        # spawned processes) is killed by pid via `ip netns pids`.
        existing = set(list_lab_namespaces())
        _delete_namespaces([ns for ns in self.namespaces if ns in existing])

    def _forget(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        if not any(ns.startswith(f"{PREFIX}-{os.getpid()}-") for ns in list_lab_namespaces()):
            with contextlib.suppress(OSError):
                (STATE_DIR / str(os.getpid())).unlink()

    # -- running things ------------------------------------------------------

    def exec_argv(self, host_name: str, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside the host's namespace."""
        return ["ip", "netns", "exec", self.host(host_name).netns, *argv]

    def spawn(
        self, host_name: str, argv: Sequence[str], **popen_kwargs: Any
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the host's namespace (``ip netns exec`` execs
        the command, so the returned process is the command itself). It is
        killed at teardown if still running."""
        if not self._up:
            raise LabError("the lab is not up")
        proc: subprocess.Popen[Any] = subprocess.Popen(
            self.exec_argv(host_name, argv), **popen_kwargs
        )
        self._procs.append(proc)
        return proc

    def run(
        self, host_name: str, argv: Sequence[str], timeout: float, **run_kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the host's namespace to completion; text output is
        captured unless ``run_kwargs`` says otherwise. Raises
        ``subprocess.TimeoutExpired`` (after killing it) on timeout."""
        if not self._up:
            raise LabError("the lab is not up")
        run_kwargs.setdefault("capture_output", True)
        run_kwargs.setdefault("text", True)
        run_kwargs.setdefault("check", False)
        result: subprocess.CompletedProcess[str] = subprocess.run(
            self.exec_argv(host_name, argv), timeout=timeout, **run_kwargs
        )
        return result

    def python_argv(self, module: str, *args: str) -> list[str]:
        """``python3 -m module args`` with this package importable."""
        return [sys.executable, "-m", module, *args]

    def python_env(self) -> dict[str, str]:
        """An environment where this checkout's package is importable inside the lab."""
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        return env

    # -- NAT knobs -----------------------------------------------------------

    def set_loss(self, lan_name: str, loss_pct: int) -> None:
        """Change a LAN's packet loss while the lab runs."""
        lan = next((x for x in self.lans if x.name == lan_name), None)
        if lan is None:
            raise KeyError(f"no LAN {lan_name!r}")
        if lan.nat == "none":
            ns = self.hosts[lan_name].netns
            # `add` then `delete` works whether or not the table exists.
            script = f"add table ip {nat.TABLE}\ndelete table ip {nat.TABLE}\n"
            if loss_pct:
                script += nat.public_host_ruleset(loss_pct)
            _parallel([_nft(ns, script)])
            return
        _parallel([_nft(self._nats[lan_name].netns, nat.set_loss_script(loss_pct))])

    def reset_nat_state(self) -> None:
        """Forget what the NATs learnt (restricted-cone seen sets, hairpin
        maps) so one experiment does not open holes for the next."""
        jobs = []
        for n in self._nats.values():
            script = nat.flush_state_script(n.lan.nat)
            if script:
                jobs.append(_nft(n.netns, script))
        _parallel(jobs)

    def nat_ruleset(self, lan_name: str) -> str:
        """The live nft ruleset of a LAN's NAT (for debugging)."""
        return _cmd(["ip", "netns", "exec", self._nats[lan_name].netns, "nft", "list", "ruleset"])

    def describe(self) -> str:
        """A human-readable list of hosts and addresses."""
        rows = []
        for h in self.hosts.values():
            kind = h.nat or ("tracker" if h.name == "trk" else "coturn")
            if h.lan is not None and h.name != h.lan:
                kind += " (shared)"
            addrs = ",".join((*h.addresses, *((h.address6,) if h.address6 else ())))
            rows.append(
                f"{h.name:<10} {kind:<31} {addrs:<24} public {h.public_address:<13} ns {h.netns}"
            )
        return "\n".join(rows)


def _v6(enabled: bool, address: str) -> str | None:
    return address if enabled else None


def lans_for(types: Sequence[str], *, per_type: int = 1, loss_pct: int = 0) -> list[LanSpec]:
    """LAN specs for NAT types, ``per_type`` LANs each, named by abbreviation
    (``open``, ``fc``, ``rc``, ``prc``, ``sym`` plus a digit)."""
    out = []
    for t in types:
        for i in range(1, per_type + 1):
            out.append(LanSpec(f"{ABBREV[t]}{i}", t, loss_pct=loss_pct))
    return out


ABBREV: Final = {
    "none": "open",
    "full-cone": "fc",
    "restricted-cone": "rc",
    "port-restricted-cone": "prc",
    "symmetric": "sym",
}


@contextlib.contextmanager
def lab(lans: Sequence[LanSpec]) -> Iterator[Topology]:
    """``with lab([...]) as t:`` — the same as ``with Topology([...]) as t``."""
    with Topology(lans) as t:
        yield t
