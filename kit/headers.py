"""Security headers on every answer, and `no-store` wherever an answer does not say otherwise.

Pages rendered by `kit.web` set their own Content-Security-Policy (scripts and styles from
this server only); every other answer (JSON, images, CSV, problems) gets the strictest one,
which lets it load nothing. An answer that names no caching is private data until proven
otherwise (patient data, tokens, access logs): `Cache-Control: no-store`. Public reads opt in
to caching explicitly.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.settings import Settings

NOTHING_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
ALWAYS = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    # The pharmacist console scans with the camera; the portal finds nearby outlets.
    ("permissions-policy", "camera=(self), geolocation=(self), microphone=(), payment=(), usb=()"),
)
HSTS = "max-age=63072000; includeSubDomains"


class SecurityHeaders:
    """Pure ASGI middleware adding the headers above to every HTTP answer."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.hsts = settings.public_base_url.startswith("https://")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS:
                    headers.setdefault(name, value)
                headers.setdefault("content-security-policy", NOTHING_POLICY)
                headers.setdefault("cache-control", "no-store")
                if self.hsts:
                    headers.setdefault("strict-transport-security", HSTS)
            await send(message)

        await self.app(scope, receive, with_headers)
