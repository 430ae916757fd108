"""Independent STUN clients against the responder on loopback.

A tiny asyncio UDP server wraps :class:`BindingResponder` on 127.0.0.1 port 0
(the bound port is read back, no sleeping for readiness) and real client
binaries query it:

* ``turnutils_stunclient`` (Debian package ``coturn``): RFC 5389/8489;
* ``stun`` (Debian package ``stun-client``): RFC 3489, no magic cookie,
  CHANGE-REQUEST in every request.

Outside CI a missing binary skips its test; in CI (``CI`` set) it fails, so
the CI script must install both packages.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import cast

import pytest

from stunlike_tracker.stun import MAGIC_COOKIE, Address, BindingResponder

CLIENT_TIMEOUT = 30.0


def need_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: CI must install the Debian package {package!r}")
        pytest.skip(f"{name} is not installed (Debian package {package!r})")
    return path


@dataclass
class Seen:
    sources: list[Address] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)


class ResponderProtocol(asyncio.DatagramProtocol):
    def __init__(self, responder: BindingResponder, seen: Seen) -> None:
        self.responder = responder
        self.seen = seen
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport is not a DatagramTransport
        # subclass on 3.11, though it has sendto().
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.seen.sources.append(addr)
        self.seen.requests.append(data)
        out = self.responder.handle_untrusted(data, addr)
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


@asynccontextmanager
async def responder_server(responder: BindingResponder, seen: Seen) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: ResponderProtocol(responder, seen), local_addr=("127.0.0.1", 0)
    )
    try:
        yield int(transport.get_extra_info("sockname")[1])
    finally:
        transport.close()


async def run_client(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=CLIENT_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@pytest.mark.coturn
@pytest.mark.asyncio
async def test_turnutils_stunclient_gets_its_mapped_address() -> None:
    exe = need_binary("turnutils_stunclient", "coturn")
    responder = BindingResponder()
    seen = Seen()
    async with responder_server(responder, seen) as port:
        rc, output = await run_client(exe, "-p", str(port), "127.0.0.1")
    assert rc == 0, output
    match = re.search(r"UDP reflexive addr: (\d+\.\d+\.\d+\.\d+):(\d+)", output)
    assert match is not None, output
    assert (match[1], int(match[2])) == seen.sources[0][:2]
    assert responder.answered >= 1
    # It speaks RFC 5389/8489: magic cookie present, bare request.
    assert int.from_bytes(seen.requests[0][4:8], "big") == MAGIC_COOKIE


@pytest.mark.asyncio
async def test_rfc3489_stun_client_gets_its_mapped_address() -> None:
    exe = need_binary("stun", "stun-client")
    responder = BindingResponder()
    seen = Seen()
    async with responder_server(responder, seen) as port:
        # stun-client 0.97 exits non-zero with its NAT classification as the
        # status, so only the output is checked.
        _, output = await run_client(exe, f"127.0.0.1:{port}", "-v")
    match = re.search(r"MappedAddress = (\d+\.\d+\.\d+\.\d+):(\d+)", output)
    assert match is not None, output
    assert (match[1], int(match[2])) in {source[:2] for source in seen.sources}
    # RFC 3489: no magic cookie; Test I (CHANGE-REQUEST 0) answered, the
    # change-IP/port tests dropped, so it must not conclude "Open".
    assert all(int.from_bytes(r[4:8], "big") != MAGIC_COOKIE for r in seen.requests)
    assert responder.answered >= 1
    assert responder.drops["stun-change-request"] >= 1
    assert "Primary: Open" not in output
