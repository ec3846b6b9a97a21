"""Headless Chromium from Debian (/usr/bin/chromium) driven by Playwright, the one way the
browser tests and the screenshot script start a browser. Playwright's own browser download
is never used: this machine cannot fetch it, and the system browser is what CI installs."""

from __future__ import annotations

import shutil
from typing import Any

#: Without the background-networking flags Chromium keeps dialling Google's hosts, which a
#: closed network refuses many times a second.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The system Chromium, or an error naming the package to install."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Chromium is missing: apt-get install chromium (make test does it)")
    return path


async def launch(playwright: Any) -> Any:
    """A headless system Chromium from an `async_playwright()` handle."""
    return await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
