"""Smoke runs of ``stunlike-tracker load`` (seconds each, no timed assertion):
every kind against a real server on loopback, so the generator cannot rot."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from stunlike_tracker.loadgen.shapes import (
    BT_ANNOUNCE,
    BT_CONNECT,
    MixChooser,
    MixError,
    Op,
    bt_answer,
    parse_mix,
    ppsp_answer,
    ppsp_templates,
    transaction_id,
)
from stunlike_tracker.ppsp import parse_request_untrusted
from stunlike_tracker.ppsp.messages import Method, PeerMode


def _load(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "stunlike_tracker.cli", "load", "--processes", "1",
         "--seconds", "0.5", "--warmup", "0.2", "--json", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_stun_against_a_local_tracker_reports_its_cpu() -> None:
    result = _load("--serve", "--kind", "stun", "--sessions", "2")
    assert isinstance(result["answered"], int) and result["answered"] > 0
    assert isinstance(result["server_cpu_seconds"], float)


def test_ppsp_realistic_mix_gets_answers_to_every_method() -> None:
    mix = "connect=5,join=5,find=25,stat=60,disconnect=5"
    result = _load("--serve", "--kind", "ppsp", "--sessions", "4", "--swarm-size", "12",
                   "--mix", mix, "--seconds", "1.5")  # fmt: skip
    statuses = result["statuses"]
    assert isinstance(statuses, dict) and set(statuses) == {"200"}
    ops = result["ops"]
    assert isinstance(ops, dict) and {"find", "stat"} <= set(ops)


def test_handshakes_with_cookies_complete() -> None:
    result = _load("--serve", "--kind", "handshake", "--sessions", "2")
    assert isinstance(result["answered"], int) and result["answered"] > 0


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    yield from _echo_server(connect_delay=0.0)


@pytest.fixture
def slow_bt_tracker() -> Iterator[tuple[str, int]]:
    # Answers each BEP 15 connect later than the load generator's 50 ms tick.
    yield from _echo_server(connect_delay=0.15)


def _echo_server(connect_delay: float) -> Iterator[tuple[str, int]]:
    """A blocking UDP echo on loopback (it also answers BEP 15 connect/announce)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(2048)
            except TimeoutError:
                continue
            answer = bt_answer(data[8:]) if len(data) >= 16 else None
            if len(data) == 16 and answer and answer[0] == BT_CONNECT:
                if connect_delay:
                    stop.wait(connect_delay)
                sock.sendto(data[8:16] + bytes(8), addr)
            elif len(data) == 98 and answer and answer[0] == BT_ANNOUNCE:
                sock.sendto(data[8:16] + bytes(12), addr)
            else:
                sock.sendto(data, addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()
    stop.set()
    thread.join()
    sock.close()


@pytest.mark.parametrize("kind", ["udp", "bt"])
def test_udp_and_bt_kinds_against_an_echo(echo_server: tuple[str, int], kind: str) -> None:
    host, port = echo_server
    result = _load("--tracker", f"{host}:{port}", "--kind", kind, "--sessions", "2")
    assert isinstance(result["answered"], int) and result["answered"] > 0
    assert result["server_cpu_seconds"] is None


def test_bt_kind_survives_connect_answers_slower_than_a_tick(
    slow_bt_tracker: tuple[str, int],
) -> None:
    # A late answer to an earlier connect used to count as an error and start
    # another connect, so a slow tracker was never announced to.
    host, port = slow_bt_tracker
    result = _load("--tracker", f"{host}:{port}", "--kind", "bt", "--sessions", "1")
    assert isinstance(result["answered"], int) and result["answered"] > 0


def test_bad_flags_are_one_line_errors() -> None:
    for args in (["--kind", "ppsp"], ["--serve", "--mix", "fnd=1"], ["--serve", "--sessions", "0"]):
        done = subprocess.run(
            [sys.executable, "-m", "stunlike_tracker.cli", "load", *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_mix_parsing_and_forced_steps() -> None:
    assert parse_mix("find=3,stat") == {Op.FIND: 3.0, Op.STAT: 1.0}
    for bad in ("find=x", "nope=1", "find=0", "find=-1"):
        with pytest.raises(MixError):
            parse_mix(bad)
    chooser = MixChooser(parse_mix("connect=5,find=1"), seed=1)
    assert chooser.next(connected=False, joined=False) is Op.CONNECT
    assert chooser.next(connected=True, joined=False) is Op.JOIN
    assert {chooser.next(connected=True, joined=True) for _ in range(50)} == {Op.FIND}


def test_templates_are_valid_requests_with_the_transaction_id() -> None:
    templates = ppsp_templates("peer-1", "swarm", 5000, seed=True)
    txid = transaction_id(7, 9)
    join = parse_request_untrusted(templates.render(Op.JOIN, txid))
    assert join.method is Method.JOIN and join.peer_mode is PeerMode.SEED
    assert join.transaction_id == txid.decode() and join.ice_offer is not None
    connect = parse_request_untrusted(templates.render(Op.CONNECT, txid, b"tok"))
    assert connect.reconnect_token == "tok"
    answer = b'<PPSPTrackerProtocol version="1.0"><Response status="403" reason="x">M</Response>'
    assert ppsp_answer(answer + b"<TransactionID>ab</TransactionID>") == (b"ab", 403)
