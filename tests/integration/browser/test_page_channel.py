"""The page's channel and transfer modules against the native ones, no tracker.

Headless Chromium (driven over the DevTools pipe) imports the page's ES
modules and exchanges offers with stunlike_tracker.peer.channel in this
process; the test carries the offers, as the tracker would (it passes them
through unchanged, PROTOCOL §6). Both directions of both roles: the page
offering (ICE controlling, DTLS server) and answering, seeding and fetching.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from stunlike_tracker.ice.sdp import offer_from_sdp_untrusted, sdp_from_offer
from stunlike_tracker.lab.cdp import Browser, Page, chromium_executable
from stunlike_tracker.peer.channel import IceServers, answer_offer, create_offer
from stunlike_tracker.peer.peer import PeerChannel
from stunlike_tracker.peer.transfer import describe_file, fetch, serve_channel
from stunlike_tracker.ppsp.messages import AddressType, AddrType, IceOffer, PeerAddress
from tests.integration.browser.static_server import static_server

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(chromium_executable() is None, reason="needs chromium"),
]

# Chromium gathers on the machine's own interface addresses (never on
# loopback), so the native side does too: traffic stays inside this host.
NATIVE = IceServers(lan_mode=True)
SIZE = 700_000  # not a multiple of the chunk size, nor of a frame


def offer_to_js(offer: IceOffer) -> str:
    return json.dumps(
        {
            "id": offer.id,
            "ufrag": offer.ufrag,
            "pwd": offer.pwd,
            "fingerprint": offer.fingerprint,
            "candidates": [
                {
                    "ip": c.ip,
                    "port": c.port,
                    "type": str(c.type),
                    "priority": c.priority,
                    "foundation": c.foundation,
                }
                for c in offer.candidates
            ],
        }
    )


def offer_from_js(raw: dict[str, object]) -> IceOffer:
    candidates = raw["candidates"]
    assert isinstance(candidates, list)
    return IceOffer(
        id=str(raw["id"]),
        ufrag=str(raw["ufrag"]),
        pwd=str(raw["pwd"]),
        fingerprint=str(raw["fingerprint"]),
        candidates=tuple(
            PeerAddress(
                addr_type=AddrType.IPV6 if ":" in c["ip"] else AddrType.IPV4,
                ip=c["ip"],
                port=int(c["port"]),
                type=AddressType(c["type"]),
                priority=int(c["priority"]),
                foundation=c["foundation"],
            )
            for c in candidates
        ),
    )


@pytest_asyncio.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    (tmp_path / "blank.html").write_text("<!doctype html><title>t</title>")
    (tmp_path / "file.bin").write_bytes(os.urandom(SIZE))
    with static_server(tmp_path) as origin:
        browser = await Browser.launch()
        try:
            tab = await browser.new_page(f"{origin}/extra/blank.html")
            await tab.evaluate(
                "(async () => { window.ch = await import('/peer/channel.js');"
                " window.tr = await import('/peer/transfer.js'); })()"
            )
            yield tab
        finally:
            print("\n".join(browser.console))
            await browser.close()


async def test_page_offers_and_seeds_native_answers_and_fetches(page: Page, tmp_path: Path) -> None:
    raw = await page.evaluate(
        """(async () => {
            window.link = new ch.Link({iceServers: []});
            return await link.createOffer("page-offer-1");
        })()"""
    )
    offer = offer_from_js(raw)
    assert offer.candidates, raw
    answer, pending = await answer_offer(offer, "native-answer-1", NATIVE)
    seeding = page.evaluate(
        f"""(async () => {{
            const channel = await link.acceptAnswer({offer_to_js(answer)});
            const bytes = new Uint8Array(await (await fetch('/extra/file.bin')).arrayBuffer());
            const shared = {{name: 'file.bin', size: bytes.length,
                             sha256: await tr.sha256Hex(bytes), bytes}};
            await tr.serve(channel, shared);
            return shared.sha256;
        }})()"""
    )
    seeded = asyncio.ensure_future(seeding)
    async with asyncio.timeout(60):
        channel = await pending
        assert channel.ice_role == "controlled"
        info = await fetch(PeerChannel("page", channel), tmp_path / "copy.bin", progress=False)
        await channel.close()
        page_hash = await seeded
    want = hashlib.sha256((tmp_path / "file.bin").read_bytes()).hexdigest()
    assert info.sha256 == want == page_hash
    assert (tmp_path / "copy.bin").read_bytes() == (tmp_path / "file.bin").read_bytes()


async def test_native_offers_and_seeds_page_answers_and_fetches(page: Page, tmp_path: Path) -> None:
    pending = await create_offer("native-offer-1", NATIVE)
    raw = await page.evaluate(
        f"""(async () => {{
            window.link = new ch.Link({{iceServers: []}});
            return await link.answer({offer_to_js(pending.offer)}, "page-answer-1");
        }})()"""
    )
    fetching = asyncio.ensure_future(
        page.evaluate(
            """(async () => {
                const channel = await link.channel.opened();
                const got = await tr.fetchFile(channel, () => {});
                return {sha256: got.sha256, size: got.size, pair: await channel.pairTypes()};
            })()"""
        )
    )
    path = tmp_path / "file.bin"
    async with asyncio.timeout(60):
        channel = await pending.accept_answer(offer_from_js(raw))
        assert channel.ice_role == "controlling"
        await serve_channel(PeerChannel("page", channel), path, describe_file(path))
        got = await fetching
    assert got["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert got["size"] == SIZE
    assert got["pair"] == "host/host"


async def test_page_and_native_sdp_mappings_agree(page: Page) -> None:
    """sdp.js and ice/sdp.py map an offer to SDP and back the same way."""
    pending = await create_offer("native-offer-2", NATIVE)
    try:
        offer = pending.offer
        mdns = "4b1f33a2-97e4-4a6c-9f3e-5b1e0f3c7d21.local"
        for role in ("offer", "answer"):
            sdp = await page.evaluate(
                "import('/peer/sdp.js').then((m) => m.sdpFromOffer("
                f"{offer_to_js(offer)}, {role!r}))"
            )
            assert ("a=setup:actpass" in sdp) == (role == "offer")
            back = offer_from_sdp_untrusted(sdp, offer.id)
            assert (back.ufrag, back.pwd, back.fingerprint) == (
                offer.ufrag,
                offer.pwd,
                offer.fingerprint,
            )
            assert [(c.ip, c.port, c.type) for c in back.candidates] == [
                (c.ip, c.port, c.type) for c in offer.candidates
            ]
        native_sdp = sdp_from_offer(offer, role="offer")
        with_mdns = native_sdp.replace(
            "a=end-of-candidates",
            f"a=candidate:9 1 udp 2122260223 {mdns} 54400 typ host\r\n"
            "a=candidate:8 1 tcp 1518280447 192.0.2.9 9 typ host tcptype active\r\n"
            "a=end-of-candidates",
        )
        raw = await page.evaluate(
            f"import('/peer/sdp.js').then((m) => m.offerFromSdp({json.dumps(with_mdns)}, 'x'))"
        )
        assert (raw["ufrag"], raw["pwd"], raw["fingerprint"]) == (
            offer.ufrag,
            offer.pwd,
            offer.fingerprint,
        )
        # The mDNS host candidate is kept for browsers (PROTOCOL §6), TCP is not.
        ips = [c["ip"] for c in raw["candidates"]]
        assert ips == [*(c.ip for c in offer.candidates), mdns]
    finally:
        await pending.close()
