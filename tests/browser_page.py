"""Driving the browser peer page (/peer/) in headless Chromium, for the tests.

The page exposes ``window.browserPeer``: its phase, the SHA-256 it shows,
and ``until(predicate)``, a promise that resolves once the state satisfies
the predicate; every wait here is on that (an event), bounded by ``limit``
seconds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from stunlike_tracker.lab.cdp import Browser, Page


class PageFailed(AssertionError):
    """The page reported a failure or did not get there in time; with its log."""


async def page_state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate(
        "({...window.browserPeer, until: undefined,"
        " log: document.getElementById('log').textContent})"
    )
    return state


async def until(page: Page, predicate: str, limit: float, what: str) -> dict[str, Any]:
    """The page state once the JS ``predicate(state)`` holds or the page failed."""
    try:
        async with asyncio.timeout(limit):
            await page.evaluate(
                f"window.browserPeer.until((s) => s.phase === 'failed' || ({predicate})(s))"
            )
    except TimeoutError:
        state = await page_state(page)
        raise PageFailed(
            f"not {what} after {limit:.0f} s (phase {state['phase']!r}):\n{state['log']}"
        ) from None
    state = await page_state(page)
    if state["phase"] == "failed":
        raise PageFailed(f"page failed: {state['error']}\n{state['log']}")
    return state


async def open_page(browser: Browser, url: str) -> Page:
    page = await browser.new_page(url)
    # Module scripts run before the load event that new_page() waited for;
    # the page leaves "loading" once its buttons work.
    async with asyncio.timeout(30):
        await page.evaluate("window.browserPeer.until((s) => s.phase !== 'loading')")
    return page


async def share(page: Page, path: Path, limit: float = 60) -> dict[str, Any]:
    """Put ``path`` into the file input and click "Share": seeding."""
    await page.set_input_files("#file", [path])
    await page.evaluate("document.getElementById('share').click()")
    return await until(page, "(s) => s.phase === 'seeding'", limit, "seeding")


async def fetch(page: Page, limit: float = 90) -> dict[str, Any]:
    """Click "Fetch" and wait until the file is fetched and its hash verified."""
    await page.evaluate("document.getElementById('fetch').click()")
    return await until(page, "(s) => s.phase === 'fetched'", limit, "fetched")


async def served(page: Page, count: int, limit: float) -> dict[str, Any]:
    """Wait until the seeding page has served ``count`` transfers."""
    return await until(page, f"(s) => (s.served || 0) >= {count}", limit, f"served {count}")
