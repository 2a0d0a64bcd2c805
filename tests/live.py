"""A live server on a loopback port and Debian's Chromium, for tests that need real sockets."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from erx.app import create_app
from kit.runtime import Runtime
from kit.settings import Settings
from tests.pg import free_port

# Debian's package, never a downloaded browser; these flags keep it off the (closed) network.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"


@contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """Serve the whole system with uvicorn on a loopback port in a thread; yield its base URL.

    The server gets a runtime of its own (same database and keys): asyncpg connections belong
    to the event loop that opened them, and the server runs its own loop.
    """
    port = free_port()
    app = create_app(runtime=Runtime.build(settings))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def launch_chromium(playwright: Any, *extra_args: str) -> Any:
    """Start Debian's Chromium headless through Playwright (nothing is downloaded)."""
    assert CHROMIUM.exists(), "install Debian's chromium package (apt-get install -y chromium)"
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args])
