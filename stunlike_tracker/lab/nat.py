"""nftables rule sets for the lab's NAT namespaces, named in RFC 4787 terms.

Every NAT namespace has ``wan`` (a veth to the public router, holding the
NAT's public address) and one veth per LAN host, ``lan0``, ``lan1``, ...
(each holding the private gateway address). Each behaviour is one ``table ip
stl`` loaded with ``nft -f -`` inside the NAT namespace:

============================  ==================================  ================================
label                         mapping (RFC 4787 §4.1)             filtering (RFC 4787 §5)
============================  ==================================  ================================
``full-cone``                 endpoint-independent                endpoint-independent
``restricted-cone``           endpoint-independent                address-dependent
``port-restricted-cone``      endpoint-independent                address-and-port-dependent
``symmetric``                 address-and-port-dependent          address-and-port-dependent
============================  ==================================  ================================

Recipes (each one confirmed with ``turnutils_natdiscovery``, see natcheck.py):

* full cone: 1:1 ``dnat to`` the host for everything arriving on ``wan``
  plus ``snat to`` the NAT address (source ports are preserved, so the
  mapping is endpoint-independent, and anyone may send to it);
* restricted cone: full cone plus a dynamic set of (internal address,
  internal port, remote address) triples filled by outgoing packets; a new
  inbound flow whose triple is not in the set is dropped. (A set of remote
  addresses alone, as first tried, leaks between sockets: natdiscovery's
  mapping test contacts the alternate address and its filtering test then
  sees endpoint-independent filtering.)
* port-restricted cone: ``masquerade`` (Linux keeps the source port when it
  can: endpoint-independent mapping) plus ``ct state new drop`` on input
  and forward from ``wan`` (conntrack then only admits replies to the exact
  remote address and port);
* symmetric: ``masquerade fully-random`` (a fresh random port per remote
  endpoint) plus the same drops.

The input drop is not cosmetic (FIELD-NOTES, "conntrack pitfall"): with a
plain masquerade a remote's first connectivity check, arriving before our
host has sent anything to that remote, creates a conntrack entry addressed to
the NAT itself; the host's next packet to that remote then collides with it
and is re-mapped to a new port, which breaks hole punching. Dropping new
inbound flows in ``input`` destroys the unconfirmed entry.

Two or more hosts behind one NAT (the ``shared`` LAN) need a masquerading
NAT. Every NAT hairpins (RFC 4787 REQ-9): LAN packets addressed to the NAT's
public address go back into the LAN, source-NATed to the public address. The
1:1 NATs send them to their one host; the masquerading ones look the port up
in a dynamic map (public port -> private address and port) that a
postrouting rule, placed after source NAT, fills from each outgoing packet.

Loss emulation (``loss_pct``) drops that percentage of the packets crossing
the NAT in each direction (``numgen random mod 100 < N drop`` in the forward
path), in its own chain so it can be changed while the lab runs.
"""

from __future__ import annotations

from typing import Final

NAT_BEHAVIOURS: Final = (
    "full-cone",
    "restricted-cone",
    "port-restricted-cone",
    "symmetric",
)
"""The NAT labels that need a NAT namespace (``none`` does not)."""

MASQUERADING: Final = frozenset({"port-restricted-cone", "symmetric"})
"""Labels that work with several hosts behind one public address."""

TABLE: Final = "stl"
LAN_PREFIX: Final = "lan"
"""The NAT's links to its hosts are ``lan0``, ``lan1``, ... (one veth each)."""
LAN_GLOB: Final = f"{LAN_PREFIX}*"
SEEN_TIMEOUT_S: Final = 300
HAIRPIN_TIMEOUT_S: Final = 300


def loss_rules(loss_pct: int) -> list[str]:
    """Rules of the ``loss`` chain: drop ``loss_pct`` percent of packets."""
    if not 0 <= loss_pct <= 100:
        raise ValueError(f"loss_pct must be within 0..100, got {loss_pct}")
    if loss_pct == 0:
        return []
    if loss_pct == 100:
        return ["drop"]  # nft rejects `< 100` for a value in 0..99
    return [f"numgen random mod 100 < {loss_pct} drop"]


def set_loss_script(loss_pct: int) -> str:
    """An ``nft -f`` script replacing the loss rules of a running table."""
    lines = [f"flush chain ip {TABLE} loss"]
    lines += [f"add rule ip {TABLE} loss {rule}" for rule in loss_rules(loss_pct)]
    return "\n".join(lines) + "\n"


def _chain(name: str, hook: str | None, body: list[str]) -> list[str]:
    out = [f"  chain {name} {{"]
    if hook is not None:
        out.append(f"    {hook}")
    out += [f"    {rule}" for rule in body]
    out.append("  }")
    return out


def nat_ruleset(
    behaviour: str,
    *,
    wan_addr: str,
    lan_subnet: str,
    hosts: list[str],
    loss_pct: int = 0,
) -> str:
    """The complete ``nft -f`` script for one NAT namespace.

    ``hosts`` are the private addresses behind the NAT; the cone NATs that
    forward everything to one host (full and restricted cone) accept exactly
    one.
    """
    if behaviour not in NAT_BEHAVIOURS:
        raise ValueError(f"unknown NAT behaviour {behaviour!r}; known: {NAT_BEHAVIOURS}")
    if not hosts:
        raise ValueError("a NAT needs at least one host behind it")
    if len(hosts) > 1 and behaviour not in MASQUERADING:
        raise ValueError(
            f"{behaviour} forwards every inbound packet to one host; "
            f"several hosts need one of {sorted(MASQUERADING)}"
        )
    prerouting: list[str] = []
    postrouting: list[str] = []
    inp: list[str] = []
    forward = ['iifname "wan" jump loss', 'oifname "wan" jump loss']
    after_nat: list[str] = []
    decls: list[str] = []
    if behaviour in ("full-cone", "restricted-cone"):
        (host,) = hosts
        prerouting += [
            f'iifname "wan" dnat ip to {host}',
            # Hairpin: the host reaching its own public address.
            f'iifname "{LAN_GLOB}" ip daddr {wan_addr} dnat ip to {host}',
        ]
        postrouting += [
            f'oifname "{LAN_GLOB}" ip saddr {lan_subnet} ct status dnat snat ip to {wan_addr}',
            f'oifname "wan" snat ip to {wan_addr}',
        ]
        if behaviour == "restricted-cone":
            # Keyed by the internal endpoint too: one socket contacting an
            # address opens nothing for the host's other sockets (RFC 4787
            # §5: "X:x has sent packets to Y").
            decls += [
                "  set seen {",
                "    type ipv4_addr . inet_service . ipv4_addr",
                "    flags dynamic,timeout",
                f"    timeout {SEEN_TIMEOUT_S}s",
                "  }",
            ]
            forward += [
                'oifname "wan" meta l4proto udp update @seen { ip saddr . udp sport . ip daddr }',
                'iifname "wan" ct state new meta l4proto != udp drop',
                'iifname "wan" ct state new ip daddr . udp dport . ip saddr != @seen drop',
            ]
    else:
        masq = "masquerade fully-random" if behaviour == "symmetric" else "masquerade"
        # Hairpin: LAN traffic to our public address goes back into the LAN.
        decls += [
            "  map hairpin {",
            "    type inet_service : ipv4_addr . inet_service",
            "    flags dynamic,timeout",
            f"    timeout {HAIRPIN_TIMEOUT_S}s",
            "  }",
        ]
        prerouting.append(
            f'iifname "{LAN_GLOB}" ip daddr {wan_addr} meta l4proto udp '
            "dnat ip addr . port to udp dport map @hairpin"
        )
        postrouting += [
            f'oifname "{LAN_GLOB}" ip saddr {lan_subnet} ct status dnat snat ip to {wan_addr}',
            f'oifname "wan" {masq}',
        ]
        after_nat.append(
            'oifname "wan" meta l4proto udp '
            "update @hairpin { udp sport : ct original ip saddr . ct original proto-src }"
        )
        inp.append('iifname "wan" ct state new drop')
        forward.append('iifname "wan" ct state new drop')
    lines = [f"table ip {TABLE} {{", *decls]
    lines += _chain("loss", None, loss_rules(loss_pct))
    lines += _chain("forward", "type filter hook forward priority filter; policy accept;", forward)
    if inp:
        lines += _chain("input", "type filter hook input priority filter; policy accept;", inp)
    if prerouting:
        lines += _chain(
            "prerouting", "type nat hook prerouting priority dstnat; policy accept;", prerouting
        )
    lines += _chain(
        "postrouting", "type nat hook postrouting priority srcnat; policy accept;", postrouting
    )
    if after_nat:
        # Runs after srcnat (priority 100), so it sees the translated port.
        lines += _chain(
            "mapped", "type filter hook postrouting priority 200; policy accept;", after_nat
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def public_host_ruleset(loss_pct: int) -> str:
    """Rules for a host with a public address (``none``): loss only.

    There is no NAT to put the loss on, so the host's own input and output
    paths drop ``loss_pct`` percent each way.
    """
    lines = [f"table ip {TABLE} {{"]
    lines += _chain("loss", None, loss_rules(loss_pct))
    lines += _chain(
        "input",
        "type filter hook input priority filter; policy accept;",
        ['iifname "eth0" jump loss'],
    )
    lines += _chain(
        "output",
        "type filter hook output priority filter; policy accept;",
        ['oifname "eth0" jump loss'],
    )
    lines.append("}")
    return "\n".join(lines) + "\n"


def flush_state_script(behaviour: str) -> str:
    """An ``nft -f`` script forgetting learnt state (sets and maps)."""
    if behaviour == "restricted-cone":
        return f"flush set ip {TABLE} seen\n"
    if behaviour in MASQUERADING:
        return f"flush map ip {TABLE} hairpin\n"
    return ""


def ipv6_firewall_ruleset() -> str:
    """IPv6 in a dual-stack lab: no NAT, a stateful firewall in the NAT
    namespace that passes what the LAN started (and its replies) and drops
    every unsolicited inbound packet (RFC 6092 REC-11, as home routers do).
    UDP hole punching then works as across an address-and-port-dependent
    filter: a host's checks open the 5-tuple the peer's checks come in on.
    ICMPv6 to the router itself passes (neighbour discovery is untracked)."""
    return """table ip6 stl6
delete table ip6 stl6
table ip6 stl6 {
    chain forward {
        type filter hook forward priority 0; policy accept;
        iifname "wan" ct state established,related accept
        iifname "wan" drop
    }
    chain input {
        type filter hook input priority 0; policy accept;
        iifname "wan" ct state established,related accept
        iifname "wan" meta l4proto ipv6-icmp accept
        iifname "wan" drop
    }
}
"""
