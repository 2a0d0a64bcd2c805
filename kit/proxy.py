"""Who the client is behind a reverse proxy: forwarded headers believed only from trusted proxies.

A request whose socket peer is in `ERX_TRUSTED_PROXIES` speaks for someone else: its client
is the right-most address of `X-Forwarded-For` that is not itself a trusted proxy (each proxy
appends the address it saw, so everything left of the first untrusted one may be forged), and
its scheme is the proxy's `X-Forwarded-Proto`. From any other peer both headers are ignored and
the peer is the client. The servers are run without their own proxy-header handling
(`uvicorn --no-proxy-headers`, `erx serve`), so this is the one rule everywhere: in tests, in
`erx serve` and in every deployment, and throttling per address means per client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCHEMES = {"http", "https", "ws", "wss"}
_CACHE_LIMIT = 4096


class TrustedProxies:
    """The proxies whose forwarded headers are believed; remembers which peers it has judged."""

    def __init__(self, networks: Sequence[Network]) -> None:
        self.networks = tuple(networks)
        self._judged: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str):
            return False
        found = self._judged.get(host)
        if found is None:
            try:
                address = ipaddress.ip_address(host.strip("[]"))
            except ValueError:
                found = False
            else:
                found = any(address in network for network in self.networks)
            if len(self._judged) >= _CACHE_LIMIT:
                self._judged.clear()
            self._judged[host] = found
        return found


def client_from_forwarded(peer: str, forwarded_for: Iterable[str], trusted: TrustedProxies) -> str:
    """The client's address given the socket peer and the X-Forwarded-For values, in order."""
    if peer not in trusted:
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    # Every hop is a proxy of ours: the left-most is the closest to the client we know of.
    return hops[0] if hops else peer


def resolve_forwarded(scope: Scope, trusted: TrustedProxies) -> None:
    """Rewrite the ASGI scope's client and scheme when the peer is a trusted proxy."""
    client = scope.get("client")
    if not client or client[0] not in trusted:
        return
    forwarded: list[str] = []
    proto: str | None = None
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            forwarded.append(value.decode("latin-1"))
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1")
    if forwarded:
        scope["client"] = (client_from_forwarded(client[0], forwarded, trusted), 0)
    if proto is not None:
        scheme = proto.split(",")[-1].strip().lower()
        if scheme in _SCHEMES:
            if scope["type"] == "websocket":
                scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
            scope["scheme"] = scheme
