"""The store contract as the core uses it, on memory, one Redis and a Redis
Cluster: each scenario runs the real core through the server's store path
(memory: direct; shared: load, core, commit), over two nodes when shared."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from stunlike_tracker.core.effects import PeerExpired
from stunlike_tracker.ppsp import encode_request, parse_indication_untrusted
from stunlike_tracker.ppsp.messages import Method, PeerMode, Request
from tests.store.backends import BACKENDS, RedisBackends
from tests.store.flow import Flow
from tests.unit.core.harness import make_offer


@pytest_asyncio.fixture(params=BACKENDS)
async def flow(
    request: pytest.FixtureRequest, redis_backends: RedisBackends
) -> AsyncIterator[Flow]:
    backend = request.param
    url = "" if backend == "memory" else redis_backends.url(backend)
    f = Flow(backend, url, nodes=1 if backend == "memory" else 2)
    try:
        yield f
    finally:
        await f.close()


@pytest.mark.asyncio
async def test_find_lists_members_joined_anywhere(flow: Flow) -> None:
    seeds = []
    for i in range(5):
        s, _ = await flow.connected(f"seed{i}", node=i % 2)
        assert (await flow.join(s, f"seed{i}", "x", PeerMode.SEED)).status == 200
        seeds.append(s)
    a, _ = await flow.connected("A", node=1)
    r = await flow.join(a, "A", "x")
    assert r.status == 200
    assert sorted(p.peer_id or "" for p in r.peers) == [f"seed{i}" for i in range(5)]
    r = await flow.find(a, "A", "x")
    assert {p.peer_id for p in r.peers} == {f"seed{i}" for i in range(5)}
    assert (await flow.find(seeds[0], "seed0", "nope")).status == 403


@pytest.mark.asyncio
async def test_find_samples_distinct_bounded_and_random(flow: Flow) -> None:
    for i in range(60):
        s, _ = await flow.connected(f"p{i}", node=i % 2)
        await flow.join(s, f"p{i}", "big", PeerMode.SEED)
    a, _ = await flow.connected("A")
    await flow.join(a, "A", "big", PeerMode.SEED)
    seen: set[str] = set()
    for _ in range(12):
        r = await flow.find(a, "A", "big")
        ids = [p.peer_id or "" for p in r.peers]
        assert len(ids) == 10 and len(set(ids)) == 10 and "A" not in ids
        seen.update(ids)
    assert len(seen) > 40  # 120 draws over 60 members


@pytest.mark.asyncio
async def test_each_offer_goes_to_exactly_one_requester(flow: Flow) -> None:
    b, _ = await flow.connected("B")
    await flow.join(b, "B", "x", PeerMode.SEED, ice_offer=make_offer("b0"))
    await flow.stat(b, "B", ice_offer=make_offer("b1"))
    handed = []
    for i, node in enumerate((0, 1, 1)):
        s, _ = await flow.connected(f"L{i}", node=node)
        r = await flow.join(s, f"L{i}", "x")
        handed += [p.offer.id for p in r.peers if p.peer_id == "B" and p.offer]
    assert sorted(handed) == ["b0", "b1"]


@pytest.mark.asyncio
async def test_grant_is_answered_once_and_only_by_its_requester(flow: Flow) -> None:
    b, _ = await flow.connected("B", node=0)
    await flow.join(b, "B", "x", PeerMode.SEED, ice_offer=make_offer("b0"))
    a, _ = await flow.connected("A", node=1)
    r = await flow.join(a, "A", "x")
    assert [p.offer.id for p in r.peers if p.offer] == ["b0"]
    m, _ = await flow.connected("M", node=1)
    await flow.join(m, "M", "x")

    def attach(peer: str, txid: str) -> Request:
        return Request(
            Method.ATTACH,
            peer,
            txid,
            swarm_id="x",
            target_peer_id="B",
            offer_id="b0",
            ice_offer=make_offer("a" + txid),
        )

    stolen = await flow.send(m, attach("M", "tm"))
    assert stolen.status == 404
    effects = await flow.raw(a, encode_request(attach("A", "ta")))
    [indication] = [parse_indication_untrusted(d) for d in flow.transmits_to(effects, b)]
    assert indication.offer_id == "b0" and indication.peer.peer_id == "A"
    again = await flow.send(a, attach("A", "ta2"))
    assert again.status in (404, 503)  # consumed (or this requester's ATTACH still in flight)


@pytest.mark.asyncio
async def test_attach_ack_reaches_the_requester_across_nodes(flow: Flow) -> None:
    b, _ = await flow.connected("B", node=0)
    await flow.join(b, "B", "x", PeerMode.SEED)
    a, _ = await flow.connected("A", node=1)
    await flow.join(a, "A", "x")
    request = Request(
        Method.ATTACH, "A", "ta", swarm_id="x", target_peer_id="B", ice_offer=make_offer("a0")
    )
    effects = await flow.raw(a, encode_request(request))
    assert flow.transmits_to(effects, a) == []  # answered when B acknowledges
    [indication] = [parse_indication_untrusted(d) for d in flow.transmits_to(effects, b)]
    ack = Request(Method.ATTACH_ACK, "B", "tb", indication_id=indication.transaction_id)
    effects = await flow.raw(b, encode_request(ack))
    from tests.unit.core.harness import Harness

    assert Harness.response_in(effects, b).status == 200
    assert Harness.response_in(effects, a).status == 200
    # A's retransmission now gets the cached 200, on any node.
    again = await flow.raw(a, encode_request(request))
    assert Harness.response_in(again, a).status == 200


@pytest.mark.asyncio
async def test_response_cache_replays_and_refuses_reuse(flow: Flow) -> None:
    b, _ = await flow.connected("B")
    await flow.join(b, "B", "x", PeerMode.SEED, ice_offer=make_offer("b0"))
    await flow.stat(b, "B", ice_offer=make_offer("b1"))
    a, _ = await flow.connected("A", node=1)
    join = encode_request(Request(Method.JOIN, "A", "tj", swarm_id="x", peer_mode=PeerMode.LEECH))
    first = await flow.raw(a, join)
    second = await flow.raw(a, join)
    assert flow.transmits_to(first, a) == flow.transmits_to(second, a)  # byte for byte
    c, _ = await flow.connected("C")
    r = await flow.join(c, "C", "x")
    assert [p.offer.id for p in r.peers if p.offer] == ["b1"]  # the replay took nothing
    other = Request(Method.FIND, "A", "tj", swarm_id="x")
    assert (await flow.send(a, other)).status == 400


@pytest.mark.asyncio
async def test_expiry_tombstone_and_reconnect(flow: Flow) -> None:
    a, token = await flow.connected("A", node=0)
    await flow.join(a, "A", "x", PeerMode.SEED)
    await flow.join(a, "A", "y", PeerMode.LEECH)
    b, _ = await flow.connected("B", node=1)
    await flow.join(b, "B", "x")
    flow.now += 60
    assert (await flow.find(b, "B", "x")).status == 200  # B renews, A does not
    flow.now += 31
    expired = [e for n in (0, 1) for e in await flow.tick(n) if isinstance(e, PeerExpired)]
    assert [e.peer_id for e in expired] == ["A"]  # once, by one node
    r = await flow.find(b, "B", "x")
    assert [p.peer_id for p in r.peers] == []
    # Within one track timeout, a re-CONNECT (any node) restores both swarms.
    a2 = flow.session(node=1)
    r = await flow.connect(a2, "A", token)
    assert r.status == 200 and sorted(r.swarm_ids) == ["x", "y"]
    r = await flow.find(b, "B", "x")
    assert [p.peer_id for p in r.peers] == ["A"]


@pytest.mark.asyncio
async def test_disconnect_and_mode_change(flow: Flow) -> None:
    a, _ = await flow.connected("A")
    await flow.join(a, "A", "x", PeerMode.LEECH)
    await flow.join(a, "A", "x", PeerMode.SEED)
    b, _ = await flow.connected("B", node=1)
    await flow.join(b, "B", "x", PeerMode.SEED, peer_num=None)
    r = await flow.find(b, "B", "x")
    assert [(p.peer_id, p.mode) for p in r.peers] == [("A", PeerMode.SEED)]
    assert (await flow.disconnect(a, "A", "x")).status == 200
    assert (await flow.find(b, "B", "x")).peers == ()
    assert (await flow.find(a, "A", "x")).status == 403


@pytest.mark.asyncio
async def test_a_retransmission_is_replayed_by_any_node(flow: Flow) -> None:
    """The response cache lives in the store: a node that did not execute a
    request answers its retransmission from the cache, executing nothing."""
    b, _ = await flow.connected("B", node=0)
    await flow.join(b, "B", "x", PeerMode.SEED, ice_offer=make_offer("b0"))
    await flow.stat(b, "B", ice_offer=make_offer("b1"))
    a, _ = await flow.connected("A", node=0)
    join = encode_request(Request(Method.JOIN, "A", "tj", swarm_id="x", peer_mode=PeerMode.LEECH))
    first = flow.transmits_to(await flow.raw(a, join), a)
    replay = flow.transmits_to(await flow.raw(a, join, via=1), a)
    assert replay == first
    c, _ = await flow.connected("C", node=1)
    r = await flow.join(c, "C", "x")
    assert [p.offer.id for p in r.peers if p.offer] == ["b1"]  # b0 was handed out once
