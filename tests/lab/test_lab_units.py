"""The NAT lab's pure parts: rule sets, parsing, expectations, the report.

These need neither root nor namespaces; tests/lab/test_netns_lab.py runs the
lab itself.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # parses our own output
from pathlib import Path

import pytest

from stunlike_tracker.lab import heatmap, matrix, nat, natcheck
from stunlike_tracker.lab.matrix import Case, CaseResult, MatrixReport
from stunlike_tracker.lab.pairs import PairResult
from stunlike_tracker.lab.topology import NAT_TYPES, LanSpec, Topology, lans_for

NATDISCOVERY_PRC = """
-= Hairpinning Behavior Discovery =-

========================================
RFC 5780 response 1
0: : IPv4. UDP reflexive addr: 203.0.113.13:58147
Received a request (maybe a successful hairpinning)

-= Mapping Behavior Discovery =-

========================================
NAT with Endpoint Independent Mapping!
========================================

-= Filtering Behavior Discovery =-
STUN receive timeout..
STUN receive timeout..

========================================
NAT with Address and Port Dependent Filtering!
========================================
"""

NATDISCOVERY_OPEN = """
-= Hairpinning Behavior Discovery =-
STUN receive timeout..
STUN receive timeout..

-= Mapping Behavior Discovery =-

========================================
No NAT! (Endpoint Independent Mapping)
========================================

========================================
NAT with Endpoint Independent Mapping!
========================================

-= Filtering Behavior Discovery =-

========================================
No NAT! (Endpoint Independent Mapping)
========================================

========================================
NAT with Endpoint Independent Filtering!
========================================
"""


def test_parse_natdiscovery_port_restricted() -> None:
    d = natcheck.parse_natdiscovery(NATDISCOVERY_PRC)
    assert d == natcheck.Discovery(True, natcheck.EIM, natcheck.APDM, hairpin=True)


def test_parse_natdiscovery_no_nat_and_failed_hairpin() -> None:
    d = natcheck.parse_natdiscovery(NATDISCOVERY_OPEN)
    assert d == natcheck.Discovery(False, natcheck.EIM, natcheck.EIM, hairpin=False)


def test_parse_natdiscovery_without_verdicts() -> None:
    d = natcheck.parse_natdiscovery("socket: Network is unreachable\n")
    assert (d.mapping, d.filtering, d.hairpin) == (natcheck.UNKNOWN, natcheck.UNKNOWN, None)


def test_every_label_has_an_expectation() -> None:
    assert set(natcheck.EXPECTED) == set(NAT_TYPES)


@pytest.mark.parametrize("behaviour", nat.NAT_BEHAVIOURS)
def test_rulesets_are_one_table_with_loss_chain(behaviour: str) -> None:
    script = nat.nat_ruleset(
        behaviour, wan_addr="203.0.113.10", lan_subnet="10.1.0.0/24", hosts=["10.1.0.2"], loss_pct=7
    )
    assert script.startswith(f"table ip {nat.TABLE} {{")
    assert "numgen random mod 100 < 7 drop" in script
    assert 'iifname "wan" jump loss' in script and 'oifname "wan" jump loss' in script


def test_ruleset_recipes() -> None:
    def rules(b: str) -> str:
        return nat.nat_ruleset(
            b, wan_addr="203.0.113.10", lan_subnet="10.1.0.0/24", hosts=["10.1.0.2"]
        )

    assert "masquerade fully-random" in rules("symmetric")
    prc = rules("port-restricted-cone")
    assert "masquerade" in prc and "fully-random" not in prc
    # The conntrack pitfall: new inbound flows must die in input, too.
    assert 'iifname "wan" ct state new drop' in prc
    assert 'iifname "wan" dnat ip to 10.1.0.2' in rules("full-cone")
    rc = rules("restricted-cone")
    assert "@seen" in rc and "ip saddr . udp sport . ip daddr" in rc


def test_ruleset_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown NAT"):
        nat.nat_ruleset("cone", wan_addr="1.2.3.4", lan_subnet="10.0.0.0/24", hosts=["10.0.0.2"])
    with pytest.raises(ValueError, match="several hosts"):
        nat.nat_ruleset("full-cone", wan_addr="1.2.3.4", lan_subnet="10.0.0.0/24", hosts=["a", "b"])
    with pytest.raises(ValueError, match="loss_pct"):
        nat.loss_rules(101)


def test_set_loss_script() -> None:
    assert nat.set_loss_script(0) == f"flush chain ip {nat.TABLE} loss\n"
    assert "< 30 drop" in nat.set_loss_script(30)


def test_lanspec_validation() -> None:
    assert LanSpec("sh", "symmetric", hosts=3).host_names() == ["sh-1", "sh-2", "sh-3"]
    assert LanSpec("a", "none").host_names() == ["a"]
    bad: list[tuple[str, str, int, int]] = [
        ("A", "none", 1, 0),
        ("toolongname", "none", 1, 0),
        ("pub", "none", 1, 0),
        ("a", "cone", 1, 0),
        ("a", "full-cone", 2, 0),
        ("a", "none", 1, -1),
    ]
    for name, nat_type, hosts, loss in bad:
        with pytest.raises(ValueError):
            LanSpec(name, nat_type, hosts=hosts, loss_pct=loss)


def test_topology_plan_without_building() -> None:
    lab = Topology([*lans_for(["none", "symmetric"]), LanSpec("sh", "symmetric", hosts=2)])
    assert lab.prefix.startswith("stl-")
    assert lab.address("open1") == lab.public_address("open1")
    assert lab.public_address("sh-1") == lab.public_address("sh-2")
    assert lab.address("sh-1") != lab.address("sh-2")
    assert len(lab.host("turn").addresses) == 2
    assert all(ns.startswith(lab.prefix + "-") for ns in lab.namespaces)
    assert len(set(lab.namespaces)) == len(lab.namespaces)
    with pytest.raises(KeyError, match="no host"):
        lab.host("nope")
    with pytest.raises(ValueError, match="duplicate"):
        Topology([LanSpec("a", "none"), LanSpec("a", "symmetric")])


def test_expected_table() -> None:
    unpunchable = {("symmetric", "symmetric"), ("symmetric", "port-restricted-cone")}
    unpunchable |= {(b, a) for a, b in unpunchable}
    for s in matrix.MATRIX_TYPES:
        for t in matrix.MATRIX_TYPES:
            assert matrix.expected_outcome(s, t, relay=True) == "connected"
            want = "failed" if (s, t) in unpunchable else "connected"
            assert matrix.expected_outcome(s, t, relay=False) == want
    assert matrix.expected_outcome(matrix.SHARED, matrix.SHARED, relay=False) == "connected"
    with pytest.raises(ValueError):
        matrix.expected_outcome("cone", "none", relay=False)


def test_plan_cases_uses_two_lans_per_type() -> None:
    types = ["full-cone", "symmetric"]
    cases = matrix.plan_cases(types, relay_modes=(False, True))
    assert len(cases) == 2 * (len(types) ** 2 + 1)
    lab = Topology(matrix.matrix_lans(types))
    for c in cases:
        assert c.seeder_host != c.leecher_host
        assert lab.host(c.seeder_host).nat == (
            matrix.SHARED_NAT if c.seeder_nat == matrix.SHARED else c.seeder_nat
        )
    only = matrix.plan_cases(types, pairs=[("symmetric", "full-cone")], shared=False)
    assert [(c.seeder_host, c.leecher_host) for c in only] == [("sym1", "fc2"), ("sym1", "fc2")]


def _report() -> MatrixReport:
    rows = [
        (
            Case("full-cone", "symmetric", False, "fc1", "sym2"),
            PairResult("connected", "host/prflx", 41.0, ""),
        ),
        (
            Case("symmetric", "symmetric", False, "sym1", "sym2"),
            PairResult("failed", None, None, "t/o"),
        ),
        (
            Case("symmetric", "symmetric", True, "sym1", "sym2"),
            PairResult("connected", "relay/relay", 120.0, ""),
        ),
        (
            Case("symmetric", "full-cone", True, "sym1", "fc2"),
            PairResult("failed", None, None, "x"),
        ),
    ]
    return MatrixReport([CaseResult(c, r, 0.1) for c, r in rows], timeout=3.0, elapsed_s=1.0)


def test_report_exit_code_and_medians() -> None:
    report = _report()
    assert [r.match for r in report.results] == [True, True, True, False]
    assert report.exit_code == 1
    assert report.median_connect_ms_by_pair_type() == {"host/prflx": 41.0, "relay/relay": 120.0}
    table = report.format_table()
    assert "UNEXPECTED symmetric -> full-cone relay=True" in table
    assert "!FAIL" in table
    good = MatrixReport(report.results[:3], timeout=3.0)
    assert good.exit_code == 0
    assert MatrixReport([], timeout=3.0).exit_code == 1  # nothing ran: not a success


def test_report_json_round_trip(tmp_path: Path) -> None:
    report = _report()
    path = tmp_path / "m.json"
    report.write_json(path)
    again = MatrixReport.from_json(json.loads(path.read_text()))
    assert again.to_json() == report.to_json()


def test_svg_heat_map_shows_each_pairs_connect_time_and_outcome_colour(tmp_path: Path) -> None:
    path = tmp_path / "m.svg"
    heatmap.write_svg(_report(), path)
    root = ET.fromstring(path.read_text())
    ns = "{http://www.w3.org/2000/svg}"
    cells = {
        (c.get("data-seeder"), c.get("data-leecher"), c.get("data-relay")): c.get("fill")
        for c in root.iter(f"{ns}rect")
        if c.get("class") == "cell"
    }
    assert len(cells) == 4
    assert cells[("symmetric", "symmetric", "false")] == heatmap.GREY
    assert cells[("symmetric", "full-cone", "true")] == heatmap.RED
    fast = cells[("full-cone", "symmetric", "false")]
    slow = cells[("symmetric", "symmetric", "true")]
    assert fast not in (heatmap.GREY, heatmap.RED, heatmap.ORANGE)
    assert fast != slow  # the shade follows the connect time (41 ms vs 120 ms)
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert "41 ms" in texts and "120 ms" in texts and "FAIL" in texts


def test_runner_contract_accepts_sync_and_async_callables() -> None:
    import asyncio

    lab = Topology([])
    case = Case("none", "none", False, "a", "b")

    def sync_pair(lab: Topology, s: str, le: str, relay: bool, timeout: float) -> PairResult:
        return PairResult("connected", "host/host", 1.0, f"{s}->{le}")

    async def async_pair(lab: Topology, s: str, le: str, relay: bool, ice_s: float) -> PairResult:
        return PairResult("failed", None, None, "async")

    class Broken:
        def __call__(self, *args: object) -> object:
            return "nope"

    # A lab with no NAT has no state to reset: run_cases works without root.
    report = asyncio.run(matrix.run_cases(lab, [case], sync_pair, ice_timeout=1))
    assert report.results[0].result.detail == "a->b"
    report = asyncio.run(matrix.run_cases(lab, [case], async_pair, ice_timeout=1))
    assert report.results[0].result.outcome == "failed"
    with pytest.raises(TypeError, match="not a PairResult"):
        asyncio.run(matrix.run_cases(lab, [case], Broken(), ice_timeout=1))  # type: ignore[arg-type]


def test_interop_table_counts_negative_controls_that_refuse_as_passing() -> None:
    from stunlike_tracker.lab.interop import CellResult, format_table, to_json

    results = [
        CellResult("stun", "x", True, True, "mapped 203.0.113.10:1", 0.1),
        CellResult("dtls", "NEG: y", False, False, "alert 40", 0.2),
        CellResult("dtls", "NEG: z", False, True, "handshake completed", 0.2),
    ]
    assert [r.passed for r in results] == [True, True, False]
    table = format_table(results, 1.0)
    assert "2/3 cells pass" in table
    assert to_json(results, 1.0)["all_pass"] is False
