"""The client state machine against real tracker cores, in memory (PROTOCOL §3, §4, §6, §9).

No sockets and no sleeps: ``client_pair`` carries documents between
``TrackerConnection`` and ``Tracker`` with a fake clock, losing, duplicating
and reordering them on request.
"""

from __future__ import annotations

from dataclasses import replace

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.peer.connection import ConnectionSettings, RequestFailed
from stunlike_tracker.ppsp import parse_request_untrusted
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    IceOffer,
    Method,
    PeerAddress,
    PeerMode,
    PeerNum,
    Request,
)
from tests.unit.client_pair import Client, Link, Net


def _join(client: Client, swarm: str, mode: PeerMode = PeerMode.LEECH, **kw: object) -> int:
    request = Request(Method.JOIN, client.peer_id, "", swarm_id=swarm, peer_mode=mode, **kw)  # type: ignore[arg-type]
    return client.submit(request)


def _find(client: Client, swarm: str, count: int | None = None) -> int:
    peer_num = PeerNum(count) if count is not None else None
    return client.submit(
        Request(Method.FIND, client.peer_id, "", swarm_id=swarm, peer_num=peer_num)
    )


def _offer(offer_id: str, port: int) -> IceOffer:
    candidates = tuple(
        PeerAddress(AddrType.IPV4, f"203.0.113.{n}", port, AddressType.HOST, 2130706431 - n, str(n))
        for n in range(1, 4)
    )
    return IceOffer(
        offer_id, "uf" + offer_id, "p" * 22, "sha-256 " + ":".join(["AB"] * 32), candidates
    )


def _connected(net: Net, peer_id: str, settings: ConnectionSettings | None = None) -> Client:
    client = net.client(peer_id, settings)
    handle = client.connect()
    net.run_until_done(client, handle)
    assert client.response(handle).status == 200
    return client


def _transaction_ids(client: Client) -> list[str]:
    return [parse_request_untrusted(d).transaction_id for d in client.sent]


def test_requests_get_fresh_transaction_ids_and_one_is_outstanding() -> None:
    net = Net()
    client = _connected(net, "a")
    handles = [_join(client, "s1"), _find(client, "s1"), _join(client, "s2", PeerMode.SEED)]
    assert len(client.sent) == 2, "only one request outstanding: the others queue"
    for handle in handles:
        net.run_until_done(client, handle)
        assert client.response(handle).status == 200
    ids = _transaction_ids(client)
    assert len(ids) == len(set(ids)) == 4
    assert client.conn.swarms == {"s1", "s2"}
    assert client.conn.reconnect_token is not None


def test_a_lost_answer_is_resent_byte_identical_and_runs_once() -> None:
    net = Net()
    client = _connected(net, "a")
    net.drop_to_clients = 3
    started = net.now
    handle = _join(client, "s")
    net.run_until_done(client, handle)
    assert client.response(handle).status == 200
    join_sends = client.sent[1:]
    assert len(join_sends) == 4 and len(set(join_sends)) == 1, "byte-identical resends"
    # RTO 0.5 s doubling: sends at +0, +0.5, +1.5, +3.5 (PROTOCOL §4).
    assert 3.5 <= net.now - started < 4.0
    assert net.store.get_peer("a") is not None


def test_a_lost_first_connect_answer_is_retried_on_the_same_association() -> None:
    """Issue 11 item 6: a whole round of answers lost; the same bytes go out
    again on the same association, the response cache answers, and the peer
    is not locked out by a CONNECT from a new socket without its token."""
    net = Net()
    client = net.client("a")
    net.drop_to_clients = 5  # every answer of the first round
    handle = client.connect()
    net.run_until_done(client, handle)
    response = client.response(handle)
    assert response.status == 200 and response.reconnect_token is not None
    assert len(set(client.sent)) == 1 and len(client.sent) == 6
    assert client.session is not None and client.session.address[1] == 40000
    assert net.executed == 6


def test_a_first_connect_whose_answer_outlived_the_cache_registers_again() -> None:
    """The cache forgot the first CONNECT: its resend is 403 Already Connected;
    the client leaves (DISCONNECT nil) and CONNECTs again on the same session,
    so it ends up with a token rather than locked out."""
    net = Net(config=TrackerConfig(response_cache_ttl=2.0))
    client = net.client("a")
    net.drop_to_clients = 3
    handle = client.connect()
    net.run_until_done(client, handle)
    assert client.response(handle).status == 200
    methods = [parse_request_untrusted(d).method for d in client.sent]
    assert methods[-2:] == [Method.DISCONNECT, Method.CONNECT]
    assert client.conn.reconnect_token is not None
    record = net.store.get_peer("a")
    assert record is not None and client.session is not None
    assert record.session_id == client.session.session_id


def test_multi_part_responses_are_merged_even_reordered() -> None:
    net = Net(down=Link(delay=0.01, jitter=0.05), seed=7)
    seeds = []
    for n in range(12):
        seed = _connected(net, f"seed-{n:02d}")
        offer = _offer(f"o{n}", 5000 + n)
        handle = _join(seed, "big", PeerMode.SEED, ice_offer=offer)
        net.run_until_done(seed, handle)
        seeds.append(seed)
    leech = _connected(net, "leech")
    handle = _join(leech, "big", peer_num=PeerNum(30))
    net.run_until_done(leech, handle)
    response = leech.response(handle)
    assert response.part is None, "merged"
    assert sorted(p.peer_id or "" for p in response.peers) == [s.peer_id for s in seeds]
    assert all(p.offer is not None for p in response.peers)


def test_a_lost_part_leaves_the_parts_that_arrived_usable() -> None:
    net = Net()
    for n in range(12):
        seed = _connected(net, f"seed-{n:02d}")
        net.run_until_done(seed, _join(seed, "big", PeerMode.SEED, ice_offer=_offer(f"o{n}", 5000)))
    leech = _connected(net, "leech")
    net.run_until_done(leech, _join(leech, "big", peer_num=PeerNum(0)))
    net.drop_to_clients = 1  # the first part of the FIND answer
    handle = _find(leech, "big", 30)
    net.run_until_done(leech, handle)
    response = leech.response(handle)
    assert response.status == 200
    assert 0 < len(response.peers) < 12
    assert len(leech.sent) == 3, "a part arrived: no resend"


def test_indications_are_acknowledged_beside_the_outstanding_request_and_reported_once() -> None:
    net = Net(down=Link(duplicate=1.0))  # every datagram toward clients twice
    a = _connected(net, "a")
    b = _connected(net, "b")
    for client in (a, b):
        net.run_until_done(client, _join(client, "s"))
    attach = Request(
        Method.ATTACH, "a", "", swarm_id="s", target_peer_id="b", ice_offer=_offer("oa", 6000)
    )
    # B is busy with its own ATTACH toward A: the acks must not queue behind it.
    attach_b = Request(
        Method.ATTACH, "b", "", swarm_id="s", target_peer_id="a", ice_offer=_offer("ob", 6001)
    )
    ha, hb = a.submit(attach), b.submit(attach_b)
    started = net.now
    net.run_until_done(a, ha)
    net.run_until_done(b, hb)
    assert a.response(ha).status == 200 and b.response(hb).status == 200
    assert net.now - started < 1.0
    assert [i.peer.peer_id for i in b.indications] == ["a"]
    assert [i.peer.peer_id for i in a.indications] == ["b"]


def test_keep_alive_holds_a_tracking_peer_and_stops_after_leaving() -> None:
    net = Net()
    client = _connected(net, "a")
    net.run_until_done(client, _join(client, "s"))
    net.run_for(400.0)  # far past the 90 s track timer
    assert net.store.get_peer("a") is not None
    keep_alives = [parse_request_untrusted(d) for d in client.sent]
    assert sum(r.method is Method.STAT_REPORT for r in keep_alives) >= 15
    net.run_until_done(client, client.submit(Request(Method.DISCONNECT, "a", "", swarm_id="nil")))
    sent = len(client.sent)
    net.run_for(100.0)
    assert len(client.sent) == sent


def test_an_expired_registration_is_restored_over_the_same_association() -> None:
    net = Net()
    client = _connected(net, "a")
    session = client.session
    net.run_for(40.0)  # REGISTERED sends no keep-alive: the init timer (30 s) expires
    assert net.store.get_peer("a") is None
    handle = _join(client, "s")
    net.run_until_done(client, handle)
    assert client.response(handle).status == 200
    assert client.session == session
    assert len(client.reconnected) == 1


def test_failover_to_the_next_tracker_restores_every_swarm() -> None:
    net = Net(trackers=2)
    fast = ConnectionSettings(rounds=1)
    client = _connected(net, "a", fast)
    for swarm in ("s1", "s2", "s3"):
        net.run_until_done(client, _join(client, swarm, PeerMode.SEED))
    other = _connected(net, "b")
    net.run_until_done(other, _join(other, "s2"))
    assert client.session_tracker == 0
    net.stop_tracker(0)
    handle = _find(client, "s2")
    net.run_until_done(client, handle)
    assert client.session_tracker == 1
    assert [p.peer_id for p in client.response(handle).peers] == ["b"]
    (restored,) = client.reconnected
    assert sorted(restored.swarm_ids) == ["s1", "s2", "s3"]
    methods = [parse_request_untrusted(d).method for d in client.sent]
    assert Method.JOIN not in methods[-3:], "the store restored the swarms: no re-JOIN"
    record = net.store.get_peer("a")
    assert record is not None and {m.swarm_id for m in record.memberships} == {"s1", "s2", "s3"}


def test_the_first_connect_fails_over_when_its_tracker_is_down() -> None:
    net = Net(trackers=2)
    net.stop_tracker(0)
    client = _connected(net, "a")
    assert client.session_tracker == 1


def test_no_tracker_at_all_fails_the_request_in_bounded_time() -> None:
    net = Net(trackers=2)
    net.stop_tracker(0)
    net.stop_tracker(1)
    client = net.client("a")
    handle = client.connect()
    net.run_until_done(client, handle, within=1.0)
    result = client.results[handle]
    assert isinstance(result, RequestFailed) and result.response is None


def test_a_node_that_goes_silent_midway_is_left_for_the_next() -> None:
    """Keep-alives notice a dead node even when the application is idle."""
    net = Net(trackers=2)
    client = _connected(net, "a", ConnectionSettings(rounds=1))
    net.run_until_done(client, _join(client, "s"))
    net.stop_tracker(0)
    net.run_for(60.0)
    assert client.session_tracker == 1
    record = net.store.get_peer("a")
    assert record is not None and record.node_id == "n1"


def test_thirty_percent_loss_with_reordering_every_request_completes_once() -> None:
    """Issue 11 item 5, in memory: 20 clients, 30 % loss both ways, duplicates
    and reordering; every CONNECT, JOIN and FIND completes exactly once."""
    lossy = Link(loss=0.3, duplicate=0.05, delay=0.01, jitter=0.2)
    net = Net(up=lossy, down=replace(lossy), seed=11)
    clients = [net.client(f"p{n:02d}") for n in range(20)]
    handles = {c.peer_id: [c.connect()] for c in clients}
    for client in clients:
        handles[client.peer_id].append(_join(client, "s"))
        handles[client.peer_id].append(_find(client, "s"))
    for client in clients:
        for handle in handles[client.peer_id]:
            net.run_until_done(client, handle, within=300.0)
    statuses = [client.response(h).status for client in clients for h in handles[client.peer_id]]
    assert statuses == [200] * 60
    assert all(len(c.results) == 3 for c in clients)
    assert all(c.session is not None and c.session.address[1] < 40020 for c in clients)
    members = {p for p in (net.store.get_peer(c.peer_id) for c in clients) if p is not None}
    assert len(members) == 20
