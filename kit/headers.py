"""Security headers on every answer, and `no-store` wherever an answer does not say otherwise.

Pages rendered by `kit.web` set their own Content-Security-Policy (scripts and styles from
this server only); every other answer (JSON, images, CSV, problems) gets the strictest one,
which lets it load nothing. An answer that names no caching is private data until proven
otherwise (patient data, tokens, access logs): `Cache-Control: no-store`. Public reads opt in
to caching explicitly. Paths whose address holds a secret (the patient view's `?k=`, see
`no_referrer_under`) send no Referer at all, not even to this site.
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
_NO_REFERRER: set[str] = set()


def no_referrer_under(prefix: str) -> None:
    """Every answer on `prefix` and below says `Referrer-Policy: no-referrer` (its pages included).

    Its addresses carry secrets: with the default `same-origin` a page's links, forms, redirects
    and assets would hand them to this site's proxies and logs in the Referer header.
    """
    _NO_REFERRER.add(prefix.rstrip("/"))


def _no_referrer(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in _NO_REFERRER)


class SecurityHeaders:
    """Pure ASGI middleware adding the headers above to every HTTP answer."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.hsts = settings.public_base_url.startswith("https://")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        secret_address = _no_referrer(scope["path"])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if secret_address:
                    headers["referrer-policy"] = "no-referrer"  # over what a page said
                for name, value in ALWAYS:
                    headers.setdefault(name, value)
                headers.setdefault("content-security-policy", NOTHING_POLICY)
                headers.setdefault("cache-control", "no-store")
                if self.hsts:
                    headers.setdefault("strict-transport-security", HSTS)
            await send(message)

        await self.app(scope, receive, with_headers)
