"""Two peer channels in one process on loopback, exchanging IceOffers directly.

No tracker: the offer and the answer are handed over in memory, as the
tracker would (it passes offers through unchanged, PROTOCOL §6). aioice skips
127.0.0.1 when it lists host addresses, so the tests gather on loopback
with ``IceServers.host_addresses``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import shutil
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from stunlike_tracker.ice.sdp import SdpError
from stunlike_tracker.peer.channel import (
    MAX_FRAME,
    RECV_WINDOW,
    ChannelClosed,
    ChannelError,
    ChannelFailed,
    ConnectTimeout,
    IceServers,
    InvalidOffer,
    P2PChannel,
    answer_offer,
    create_offer,
)
from stunlike_tracker.ppsp.messages import AddressType, IceOffer
from tests.coturn import Coturn, running_coturn

# aioice's interface list leaves out 127.0.0.1: gather on loopback explicitly.
LOOPBACK = ("127.0.0.1",)
LAN = IceServers(lan_mode=True, host_addresses=LOOPBACK)
# Short bounds keep the failure tests quick; production defaults are 10 s/15 s.
FAIL_TIMEOUT = 3.0
SLACK = 2.0


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    if shutil.which("turnserver") is None:
        pytest.skip("coturn's turnserver is not installed")
    with running_coturn(tmp_path) as server:
        yield server


class Pair:
    def __init__(self) -> None:
        self.channels: list[P2PChannel] = []

    async def connect(
        self, a: IceServers = LAN, b: IceServers = LAN
    ) -> tuple[P2PChannel, P2PChannel]:
        pending = await create_offer("offer-a", a)
        answer, waiter = await answer_offer(pending.offer, "answer-b", b)
        ca = await pending.accept_answer(answer)
        cb = await waiter
        self.channels += [ca, cb]
        return ca, cb


@pytest_asyncio.fixture
async def pair() -> AsyncIterator[Pair]:
    p = Pair()
    yield p
    for channel in p.channels:
        await channel.close(linger=0)


def _tamper_fingerprint(offer: IceOffer) -> IceOffer:
    assert offer.fingerprint is not None
    algorithm, value = offer.fingerprint.split(" ")
    first = "00" if not value.startswith("00") else "11"
    return dataclasses.replace(offer, fingerprint=f"{algorithm} {first}{value[2:]}")


# --- connecting and exchanging data -----------------------------------------


@pytest.mark.asyncio
async def test_offers_carry_loopback_host_candidates() -> None:
    async with await create_offer("o-1", LAN) as pending:
        offer = pending.offer
    assert offer.id == "o-1"
    assert offer.fingerprint is not None and offer.fingerprint.startswith("sha-256 ")
    assert offer.candidates
    assert all(c.type is AddressType.HOST and c.ip == "127.0.0.1" for c in offer.candidates)


@pytest.mark.asyncio
async def test_without_lan_mode_loopback_only_host_has_no_candidates() -> None:
    with pytest.raises(ChannelFailed, match="no usable local ICE candidates"):
        await create_offer("o-1", IceServers(host_addresses=LOOPBACK))


@pytest.mark.asyncio
async def test_data_both_ways(pair: Pair) -> None:
    a, b = await pair.connect()
    await a.send(b"hello from the offerer")
    assert await b.recv() == b"hello from the offerer"
    await b.send(b"hello from the answerer")
    assert await a.recv() == b"hello from the answerer"
    await a.send(b"")
    await a.send(bytearray(b"x" * (MAX_FRAME * 3 + 5)))
    assert await b.recv() == b""
    assert await b.recv() == b"x" * (MAX_FRAME * 3 + 5)
    for i in range(200):
        await b.send(i.to_bytes(2, "big"))
    assert [int.from_bytes(await a.recv(), "big") for _ in range(200)] == list(range(200))


@pytest.mark.asyncio
async def test_roles_fingerprints_and_selected_pair(pair: Pair) -> None:
    pending = await create_offer("offer-a", LAN)
    answer, waiter = await answer_offer(pending.offer, "answer-b", LAN)
    a = await pending.accept_answer(answer)
    b = await waiter
    pair.channels += [a, b]
    # PROTOCOL §6: the peer whose offer is answered is ICE controlling.
    assert (a.ice_role, b.ice_role) == ("controlling", "controlled")
    assert a.remote_fingerprint == answer.fingerprint
    assert b.remote_fingerprint == pending.offer.fingerprint
    assert a.remote_fingerprint != b.remote_fingerprint
    assert a.selected_pair_types() == ("host", "host")
    assert b.selected_pair_types() == ("host", "host")
    await a.close()
    assert a.closed
    assert a.selected_pair_types() == ("host", "host")  # still known after close


@pytest.mark.asyncio
async def test_close_ends_the_peer_recv(pair: Pair) -> None:
    a, b = await pair.connect()
    await a.send(b"last words")
    await a.close()
    async with asyncio.timeout(5):
        assert await b.recv() == b"last words"
        with pytest.raises(ChannelClosed):
            await b.recv()
        with pytest.raises(ChannelClosed):
            await b.send(b"too late")
    with pytest.raises(ChannelClosed):
        await a.recv()
    with pytest.raises(ChannelClosed):
        await a.send(b"too late")
    await a.close()  # idempotent


@pytest.mark.asyncio
async def test_close_lingers_until_the_peer_has_everything(pair: Pair) -> None:
    """CLOSE/CLOSE_ACK on the ordered channel: a message still in aiortc's
    buffers when close() is called reaches the peer whole."""
    a, b = await pair.connect()
    payload = os.urandom(3 * 1024 * 1024)
    await a.send(payload)  # returns once buffered, long before delivered
    await a.close()
    async with asyncio.timeout(10):
        assert await b.recv() == payload
        with pytest.raises(ChannelClosed):
            await b.recv()


@pytest.mark.asyncio
async def test_ten_megabytes_with_hash_match(pair: Pair) -> None:
    a, b = await pair.connect()
    payload = os.urandom(10 * 1024 * 1024)

    async def receive() -> str:
        data = await b.recv()
        digest = hashlib.sha256(data).hexdigest()
        await b.send(digest.encode())
        return digest

    started = time.perf_counter()
    async with asyncio.timeout(120):
        receiver = asyncio.create_task(receive())
        await a.send(payload)
        # The sender never buffers more than the window in aiortc.
        assert a._link.dc.bufferedAmount <= RECV_WINDOW
        echoed = (await a.recv()).decode()
        assert await receiver == echoed == hashlib.sha256(payload).hexdigest()
    elapsed = time.perf_counter() - started
    print(f"\n10 MiB over the loopback channel: {elapsed:.2f} s ({10 / elapsed:.1f} MiB/s)")


@pytest.mark.asyncio
async def test_sender_waits_for_a_slow_reader(pair: Pair) -> None:
    a, b = await pair.connect()
    chunk = os.urandom(RECV_WINDOW)
    sender = asyncio.create_task(a.send(chunk * 3))
    # Nobody reads: the sender must stop once the window is used up.
    done, _ = await asyncio.wait({sender}, timeout=1.0)
    assert not done
    assert b._link.queued <= RECV_WINDOW
    async with asyncio.timeout(30):
        assert await b.recv() == chunk * 3
        await sender


@pytest.mark.asyncio
async def test_cancelled_recv_loses_nothing(pair: Pair) -> None:
    a, b = await pair.connect()
    pending_recv = asyncio.create_task(b.recv())
    await asyncio.sleep(0)  # let it start waiting
    pending_recv.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending_recv
    await a.send(b"still here")
    assert await b.recv() == b"still here"


@pytest.mark.asyncio
async def test_oversized_message_fails_the_channel(pair: Pair) -> None:
    a, b = await pair.connect()
    await a.send(b"x" * 100_000)
    with pytest.raises(ChannelFailed, match="larger than"):
        await b.recv(max_size=50_000)
    with pytest.raises(ChannelClosed):
        await b.recv()


@pytest.mark.asyncio
async def test_protocol_violation_fails_the_channel(pair: Pair) -> None:
    a, b = await pair.connect()
    b._link._dc_send(b"\x07junk")  # not one of our frame types
    async with asyncio.timeout(5):
        with pytest.raises(ChannelClosed) as info:
            await a.recv()
    assert isinstance(info.value.__cause__, ChannelFailed)
    assert "unknown frame type" in str(info.value)


# --- offers that are not used as planned -------------------------------------


@pytest.mark.asyncio
async def test_unused_offer_and_pending_answer_close_cleanly() -> None:
    pending = await create_offer("o-1", LAN)
    _answer, waiter = await answer_offer(pending.offer, "o-2", LAN)
    await waiter.close()
    await pending.close()
    await pending.close()


@pytest.mark.asyncio
async def test_bad_answer_leaves_the_offer_usable(pair: Pair) -> None:
    pending = await create_offer("offer-a", LAN)
    answer, waiter = await answer_offer(pending.offer, "answer-b", LAN)
    with pytest.raises(InvalidOffer):
        await pending.accept_answer(dataclasses.replace(answer, fingerprint=None))
    with pytest.raises(ChannelError):  # also a ChannelError ...
        await pending.accept_answer(dataclasses.replace(answer, ufrag="bad ufrag"))
    with pytest.raises(SdpError):  # ... and an SdpError
        await pending.accept_answer(dataclasses.replace(answer, pwd="short"))
    a = await pending.accept_answer(answer)
    b = await waiter
    pair.channels += [a, b]
    with pytest.raises(ChannelError):
        await pending.accept_answer(answer)


@pytest.mark.asyncio
async def test_bad_offer_is_refused_before_any_socket() -> None:
    pending = await create_offer("offer-a", LAN)
    try:
        with pytest.raises(InvalidOffer):
            await answer_offer(dataclasses.replace(pending.offer, pwd="short"), "b", LAN)
    finally:
        await pending.close()


# --- authentication and bounded failure --------------------------------------


@pytest.mark.asyncio
async def test_tampered_fingerprint_in_answer_fails() -> None:
    pending = await create_offer("offer-a", LAN)
    answer, waiter = await answer_offer(
        pending.offer, "answer-b", LAN, connect_timeout=FAIL_TIMEOUT
    )
    started = time.perf_counter()
    # aiortc checks the peer certificate against the fingerprint after the
    # handshake: the offerer (DTLS server) rejects the answerer.
    with pytest.raises(ChannelFailed, match="fingerprint") as info:
        await pending.accept_answer(_tamper_fingerprint(answer), connect_timeout=FAIL_TIMEOUT)
    assert not isinstance(info.value, ConnectTimeout)
    with pytest.raises(ChannelFailed):
        await waiter
    assert time.perf_counter() - started < FAIL_TIMEOUT + SLACK


@pytest.mark.asyncio
async def test_tampered_fingerprint_in_offer_fails() -> None:
    pending = await create_offer("offer-a", LAN)
    answer, waiter = await answer_offer(
        _tamper_fingerprint(pending.offer), "answer-b", LAN, connect_timeout=FAIL_TIMEOUT
    )
    started = time.perf_counter()
    accepting = asyncio.create_task(pending.accept_answer(answer, connect_timeout=FAIL_TIMEOUT))
    # The answerer (DTLS client) rejects the offerer's certificate.
    with pytest.raises(ChannelFailed, match="fingerprint") as info:
        await waiter
    assert not isinstance(info.value, ConnectTimeout)
    with pytest.raises(ChannelFailed):
        await accepting
    assert time.perf_counter() - started < FAIL_TIMEOUT + SLACK


@pytest.mark.asyncio
@pytest.mark.parametrize("field", ["ufrag", "pwd"])
async def test_wrong_ice_credentials_fail_in_bounded_time(field: str) -> None:
    pending = await create_offer("offer-a", LAN)
    answer, waiter = await answer_offer(
        pending.offer, "answer-b", LAN, connect_timeout=FAIL_TIMEOUT
    )
    if field == "ufrag":
        wrong = dataclasses.replace(answer, ufrag="Wr0ng")
    else:
        wrong = dataclasses.replace(answer, pwd="ThisIsNotThePassword22")
    started = time.perf_counter()
    with pytest.raises(ChannelFailed):
        await pending.accept_answer(wrong, connect_timeout=FAIL_TIMEOUT)
    with pytest.raises(ChannelFailed):
        await waiter
    assert time.perf_counter() - started < FAIL_TIMEOUT + SLACK


@pytest.mark.asyncio
async def test_unanswered_answer_times_out() -> None:
    pending = await create_offer("offer-a", LAN)
    await pending.close()  # the offerer went away
    _answer, waiter = await answer_offer(
        pending.offer, "answer-b", LAN, connect_timeout=FAIL_TIMEOUT
    )
    started = time.perf_counter()
    with pytest.raises(ChannelFailed):
        await waiter
    assert time.perf_counter() - started < FAIL_TIMEOUT + SLACK


# --- relays -------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.coturn
async def test_relay_only_through_coturn(coturn: Coturn, pair: Pair) -> None:
    relay = IceServers(
        turn=coturn.turn_server("peer-a"), relay_only=True, lan_mode=True, host_addresses=LOOPBACK
    )
    pending = await create_offer("offer-a", relay)
    assert pending.offer.candidates
    assert all(c.type is AddressType.RELAYED for c in pending.offer.candidates)
    low, high = coturn.relay_ports
    assert all(low <= c.port <= high for c in pending.offer.candidates)
    answer, waiter = await answer_offer(pending.offer, "answer-b", LAN)
    a = await pending.accept_answer(answer)
    b = await waiter
    pair.channels += [a, b]
    pair_a, pair_b = a.selected_pair_types(), b.selected_pair_types()
    assert pair_a is not None and pair_a[0] == "relay"
    assert pair_b is not None and pair_b[1] == "relay"
    payload = os.urandom(300_000)
    await a.send(payload)
    assert await b.recv() == payload
    await b.send(b"pong")
    assert await a.recv() == b"pong"


@pytest.mark.asyncio
@pytest.mark.coturn
async def test_both_sides_relay_only(coturn: Coturn, pair: Pair) -> None:
    a, b = await pair.connect(
        IceServers(
            turn=coturn.turn_server("peer-a"),
            relay_only=True,
            lan_mode=True,
            host_addresses=LOOPBACK,
        ),
        IceServers(
            turn=coturn.turn_server("peer-b"),
            relay_only=True,
            lan_mode=True,
            host_addresses=LOOPBACK,
        ),
    )
    assert a.selected_pair_types() == ("relay", "relay")
    assert b.selected_pair_types() == ("relay", "relay")
    await a.send(b"via two relays")
    assert await b.recv() == b"via two relays"


@pytest.mark.asyncio
@pytest.mark.coturn
async def test_relay_with_bad_credentials_gathers_nothing(coturn: Coturn) -> None:
    turn = dataclasses.replace(coturn.turn_server("peer-a"), credential="d3Jvbmc=")
    started = time.perf_counter()
    with pytest.raises(ChannelFailed, match="TURN"):
        await create_offer(
            "o", IceServers(turn=turn, relay_only=True, lan_mode=True, host_addresses=LOOPBACK)
        )
    assert time.perf_counter() - started < 10


# --- timings --------------------------------------------------------------------


async def _timed_connection() -> tuple[float, float, float]:
    t0 = time.perf_counter()
    pending = await create_offer("offer-a", LAN)
    t_offer = time.perf_counter()
    answer, waiter = await answer_offer(pending.offer, "answer-b", LAN)
    t_answer = time.perf_counter()
    a = await pending.accept_answer(answer)
    t_open = time.perf_counter()
    b = await waiter
    await a.send(b"first")
    assert await b.recv() == b"first"
    t_first = time.perf_counter()
    await a.close(linger=0)
    await b.close(linger=0)
    return t_offer - t0, t_open - t0, t_first - t_answer


@pytest.mark.asyncio
async def test_timings_on_loopback() -> None:
    runs = [await _timed_connection() for _ in range(5)]
    gather = statistics.median(r[0] for r in runs)
    to_open = statistics.median(r[1] for r in runs)
    to_first = statistics.median(r[2] for r in runs)
    print(
        f"\nloopback, median of {len(runs)}: create_offer {gather * 1000:.1f} ms, "
        f"create_offer -> channel open {to_open * 1000:.1f} ms, "
        f"answer -> first byte {to_first * 1000:.1f} ms "
        f"(max {max(r[1] for r in runs) * 1000:.1f} / {max(r[2] for r in runs) * 1000:.1f} ms)"
    )
    assert to_open < 5 and to_first < 5
