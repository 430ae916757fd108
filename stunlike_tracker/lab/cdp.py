"""Drive headless Chromium over the DevTools protocol on a pipe (no npm, no websockets).

``chromium --remote-debugging-pipe`` reads DevTools commands from its file
descriptor 3 and writes answers and events to descriptor 4, each a JSON
document followed by a NUL byte. This module starts Chromium with those two
pipes (optionally inside a network namespace: ``ip netns exec`` keeps the
descriptors), opens pages and evaluates JavaScript in them. It is how the
tests and the NAT lab drive the browser peer page served at ``/peer/``.

Every call is bounded by the caller's timeouts; a Chromium that exits fails
every pending call at once with :class:`BrowserError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

__all__ = [
    "CHROMIUM_FLAGS",
    "HEADLESS_FLAGS",
    "RAW_HOST_IPS_FLAG",
    "Browser",
    "BrowserError",
    "Page",
    "chromium_executable",
]

HEADLESS_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # This machine has no Internet: Chromium's own background connections
    # would be refused, many at a time (FIELD-NOTES).
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""Every headless Chromium the project starts (lab, interop, tests) runs with these."""
CHROMIUM_FLAGS: Final = (
    *HEADLESS_FLAGS,
    # The tracker's dev certificate is not in Chromium's trust store.
    "--ignore-certificate-errors",
)
RAW_HOST_IPS_FLAG: Final = "--disable-features=WebRtcHideLocalIpsWithMdns"
"""Raw host IPs in candidates instead of mDNS names, which a native peer
cannot resolve (PROTOCOL §6); without it the page relies on srflx/relay."""
_MAX_MESSAGE: Final = 64 * 1024 * 1024
STARTUP_LIMIT: Final = 30.0
"""Seconds for Chromium to answer its first DevTools command."""
LOAD_LIMIT: Final = 30.0
"""Seconds for a page to load."""


class BrowserError(Exception):
    """Chromium exited, refused a command, or a page script threw."""


def chromium_executable() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _start(argv: list[str], read_fd: int, write_fd: int) -> subprocess.Popen[bytes]:
    """Start Chromium with ``read_fd`` as its fd 3 and ``write_fd`` as its fd 4."""

    def wire_pipes() -> None:  # in the child, before exec
        read_end, write_end = os.dup(read_fd), os.dup(write_fd)
        os.dup2(read_end, 3)
        os.dup2(write_end, 4)
        os.closerange(5, 1024)

    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=False,
        preexec_fn=wire_pipes,
        start_new_session=True,
    )


class _Reader(asyncio.Protocol):
    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\0")) >= 0:
            message = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            self.browser._dispatch(json.loads(message))
        if len(self.buffer) > _MAX_MESSAGE:
            self.browser._fail(BrowserError("DevTools message too large"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.browser._fail(BrowserError("Chromium closed its DevTools pipe (it exited)"))


class Browser:
    """One Chromium process with a fresh profile."""

    def __init__(self, process: subprocess.Popen[bytes], write_fd: int, profile: str) -> None:
        self.process = process
        self._write_fd = write_fd
        self._profile = profile
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._closed: BrowserError | None = None
        self.console: list[str] = []
        self._transport: asyncio.ReadTransport | None = None

    @classmethod
    async def launch(
        cls,
        *,
        netns: str | None = None,
        extra_flags: Sequence[str] = (),
        executable: str | None = None,
        mdns: bool = False,
    ) -> Browser:
        """Start Chromium; ``mdns=True`` keeps its default of hiding host
        addresses behind mDNS names (as a browser on the Internet does)."""
        exe = executable or chromium_executable()
        if exe is None:
            raise BrowserError("chromium is not installed (.ci/run installs it)")
        profile = tempfile.mkdtemp(prefix="stl-cdp-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        argv = [
            exe,
            *CHROMIUM_FLAGS,
            *(() if mdns else (RAW_HOST_IPS_FLAG,)),
            *extra_flags,
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        if netns is not None:
            argv = ["ip", "netns", "exec", netns, *argv]

        process = _start(argv, to_browser_r, from_browser_w)
        os.close(to_browser_r)
        os.close(from_browser_w)
        browser = cls(process, to_browser_w, profile)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(
            lambda: _Reader(browser), os.fdopen(from_browser_r, "rb", buffering=0)
        )
        browser._transport = transport
        try:
            async with asyncio.timeout(STARTUP_LIMIT):
                await browser.send("Browser.getVersion")
        except BaseException:
            await browser.close()
            raise
        return browser

    # -- protocol -------------------------------------------------------------

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message:
            future = self._pending.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(message)
        elif message.get("method") == "Runtime.consoleAPICalled":
            args = message["params"].get("args", [])
            self.console.append(" ".join(str(a.get("value", a.get("description"))) for a in args))
        elif message.get("method") == "Runtime.exceptionThrown":
            details = message["params"]["exceptionDetails"]
            self.console.append(f"uncaught: {details.get('exception', {}).get('description')}")

    def _fail(self, error: BrowserError) -> None:
        if self._closed is None:
            self._closed = error
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """One DevTools command; its ``result``, or :class:`BrowserError`."""
        if self._closed is not None:
            raise self._closed
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                written = os.write(self._write_fd, data)
                data = data[written:]
        except OSError as error:
            raise BrowserError(f"Chromium is gone: {error}") from None
        answer = await future
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def new_page(self, url: str) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"], target["targetId"])
        await page.command("Runtime.enable")
        await page.command("Page.enable")
        await page.goto(url)
        return page

    async def close(self) -> None:
        with contextlib.suppress(BrowserError):
            await asyncio.wait_for(self.send("Browser.close"), 5)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)
        await asyncio.get_running_loop().run_in_executor(None, self.process.wait)
        if self._transport is not None:
            self._transport.close()
        with contextlib.suppress(OSError):
            os.close(self._write_fd)
        self._fail(BrowserError("browser closed"))
        shutil.rmtree(self._profile, ignore_errors=True)

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class Page:
    """One tab, attached with a flat DevTools session."""

    def __init__(self, browser: Browser, session: str, target: str) -> None:
        self.browser = browser
        self.session = session
        self.target = target

    async def command(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.send(method, params, self.session)

    async def goto(self, url: str) -> None:
        """Navigate and wait until the document (and its module scripts) loaded."""
        async with asyncio.timeout(LOAD_LIMIT):
            await self.command("Page.navigate", {"url": url})
            await self.evaluate(
                "new Promise((resolve) => document.readyState === 'complete' ? resolve()"
                " : addEventListener('load', () => resolve()))"
            )

    async def evaluate(self, expression: str) -> Any:
        """Evaluate ``expression`` (awaiting a promise) and return its JSON value."""
        result = await self.command(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page script failed: {text}")
        return result["result"].get("value")

    async def set_input_files(self, selector: str, paths: Sequence[Path]) -> None:
        """Put files into an ``<input type=file>`` (fires its change event)."""
        found = await self.command(
            "Runtime.evaluate", {"expression": f"document.querySelector({json.dumps(selector)})"}
        )
        object_id = found["result"].get("objectId")
        if object_id is None:
            raise BrowserError(f"no element matches {selector}")
        await self.command(
            "DOM.setFileInputFiles",
            {"files": [str(p.resolve()) for p in paths], "objectId": object_id},
        )

    async def close(self) -> None:
        with contextlib.suppress(BrowserError):
            await self.browser.send("Target.closeTarget", {"targetId": self.target})
