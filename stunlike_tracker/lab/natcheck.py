"""Check each lab NAT against its label with a tool that is not ours.

coturn's ``turnutils_natdiscovery`` runs the RFC 5780 tests from inside each
LAN host against a two-address coturn on the public network: mapping
(``-m``: same reflexive address towards the alternate address/port?),
filtering (``-f``: does a response from the other address / other port get
through?) and hairpinning (``-H``: does a packet to our own reflexive address
come back?). Its verdicts are compared with the label's RFC 4787 meaning.

Timing: each filtering test that a NAT blocks costs natdiscovery a 3 s
receive timeout, so an address-and-port-dependent filter takes about 6 s; the
hosts are checked in parallel.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import re
import time
from collections.abc import Sequence
from typing import Final

from stunlike_tracker.lab.coturn import Coturn
from stunlike_tracker.lab.topology import Host, Topology

EIM: Final = "endpoint-independent"
ADM: Final = "address-dependent"
APDM: Final = "address-and-port-dependent"
UNKNOWN: Final = "unknown"

EXPECTED: Final[dict[str, tuple[bool, str, str]]] = {
    # label: (behind a NAT, mapping, filtering)
    "none": (False, EIM, EIM),
    "full-cone": (True, EIM, EIM),
    "restricted-cone": (True, EIM, ADM),
    "port-restricted-cone": (True, EIM, APDM),
    "symmetric": (True, APDM, APDM),
}
"""What natdiscovery must report for each label (RFC 4787 terms)."""

_VERDICT: Final = re.compile(
    r"^(?:NAT with (Endpoint Independent|Address Dependent|Address and Port Dependent)"
    r" (Mapping|Filtering)!|(No NAT)! \(Endpoint Independent Mapping\))$",
    re.MULTILINE,
)
_TERMS: Final = {
    "Endpoint Independent": EIM,
    "Address Dependent": ADM,
    "Address and Port Dependent": APDM,
}
NATDISCOVERY_TIMEOUT_S: Final = 30.0


@dataclasses.dataclass(frozen=True)
class Discovery:
    """natdiscovery's verdicts, parsed."""

    nat_detected: bool
    mapping: str
    filtering: str
    hairpin: bool | None  # None: not tested


@dataclasses.dataclass(frozen=True)
class NatObservation:
    host: str
    label: str
    shared: bool
    discovery: Discovery
    elapsed_s: float
    raw: str

    @property
    def expected(self) -> tuple[bool, str, str]:
        return EXPECTED[self.label]

    @property
    def ok(self) -> bool:
        d = self.discovery
        got = (d.nat_detected, d.mapping, d.filtering)
        return got == self.expected and d.hairpin is not False


def _section(text: str, title: str) -> str:
    start = text.find(f"-= {title} =-")
    if start < 0:
        return ""
    end = text.find("\n-= ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def parse_natdiscovery(text: str) -> Discovery:
    """Parse ``turnutils_natdiscovery -H -m -f -L <local>`` output.

    "No NAT!" is printed only when the reflexive address equals the local
    one, so the caller must pass ``-L`` with the host's address.
    """
    nat_detected = True
    found: dict[str, str] = {}
    for m in _VERDICT.finditer(text):
        if m.group(3):
            nat_detected = False
        else:
            found.setdefault(m.group(2), _TERMS[m.group(1)])
    hair = _section(text, "Hairpinning Behavior Discovery")
    hairpin = ("Received a request" in hair) if hair else None
    return Discovery(
        nat_detected=nat_detected,
        mapping=found.get("Mapping", UNKNOWN),
        filtering=found.get("Filtering", UNKNOWN),
        hairpin=hairpin,
    )


def natdiscovery_argv(host: Host, server: tuple[str, int]) -> list[str]:
    addr, port = server
    return ["turnutils_natdiscovery", "-H", "-m", "-f", "-L", host.address, "-p", str(port), addr]


def check_host(lab: Topology, host_name: str, server: tuple[str, int]) -> NatObservation:
    host = lab.host(host_name)
    if host.nat is None:
        raise ValueError(f"{host_name} is not a LAN host")
    t0 = time.monotonic()
    proc = lab.run(host_name, natdiscovery_argv(host, server), timeout=NATDISCOVERY_TIMEOUT_S)
    elapsed = time.monotonic() - t0
    raw = proc.stdout + proc.stderr
    shared = sum(1 for h in lab.lan_hosts() if h.lan == host.lan) > 1
    return NatObservation(host_name, host.nat, shared, parse_natdiscovery(raw), elapsed, raw)


def natcheck(
    lab: Topology, coturn: Coturn, hosts: Sequence[str] | None = None
) -> list[NatObservation]:
    """Run natdiscovery on every LAN host (or ``hosts``) in parallel."""
    names = list(hosts) if hosts is not None else [h.name for h in lab.lan_hosts()]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        futures = [pool.submit(check_host, lab, n, coturn.stun_server) for n in names]
        return [f.result() for f in futures]


def _short(behaviour: str) -> str:
    return {EIM: "EI", ADM: "AD", APDM: "APD", UNKNOWN: "?"}[behaviour]


def format_table(observations: Sequence[NatObservation]) -> str:
    """The observations as a text table (EI/AD/APD: endpoint-independent,
    address-dependent, address-and-port-dependent)."""
    head = (
        f"{'host':<8} {'label':<30} {'NAT':<4} {'mapping':<8} {'filtering':<10} "
        f"{'hairpin':<8} {'time':>6}  verdict"
    )
    rows = [head, "-" * len(head)]
    for o in observations:
        d = o.discovery
        label = o.label + (" (shared)" if o.shared else "")
        hp = {True: "yes", False: "no", None: "-"}[d.hairpin]
        verdict = "ok" if o.ok else f"MISMATCH (expected {_expected_text(o)})"
        rows.append(
            f"{o.host:<8} {label:<30} {'yes' if d.nat_detected else 'no':<4} "
            f"{_short(d.mapping):<8} {_short(d.filtering):<10} {hp:<8} "
            f"{o.elapsed_s:>5.1f}s  {verdict}"
        )
    return "\n".join(rows)


def _expected_text(o: NatObservation) -> str:
    nat, mapping, filtering = o.expected
    return (
        f"NAT {'yes' if nat else 'no'}, {_short(mapping)} mapping, "
        f"{_short(filtering)} filtering, hairpin"
    )
