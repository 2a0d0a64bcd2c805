"""Which service serves which path: the table the proxy configs are checked against.

Used by tests/deploy/test_routing.py (nginx configs and the Ingress, parsed) and by
scripts/check_nginx.py (a real nginx in front of three stub upstreams), with the addresses whose
secrets the access log must not write.
"""

from __future__ import annotations

from dataclasses import dataclass

CORE = "core"
GATEWAY = "gateway"
PORTAL = "portal"
ANY = frozenset({CORE, GATEWAY, PORTAL})


@dataclass(frozen=True)
class Route:
    path: str
    services: frozenset[str]  # the services allowed to answer it
    cached: bool = False  # may the edge cache it (only the public portal)


def to(service: str) -> frozenset[str]:
    return frozenset({service})


ROUTES: tuple[Route, ...] = (
    # core: OAuth, prescriptions, catalogue, registry
    Route("/api/v1/auth/token", to(CORE)),
    Route("/api/v1/prescriptions", to(CORE)),
    Route("/api/v1/prescriptions/01001K7Q2M9X-c", to(CORE)),
    Route("/api/v1/prescriptions/01001K7Q2M9X-c/qr.png", to(CORE)),
    Route("/api/v1/prescriptions/01001K7Q2M9X-c/cancel", to(CORE)),
    Route("/api/v1/prescriptions/01001K7Q2M9X-c/access-log", to(CORE)),
    Route("/api/v1/prescriptions/01001K7Q2M9X-c/fhir", to(CORE)),
    Route("/api/v1/prescriptions/fhir", to(CORE)),
    Route("/api/v1/prescribers/42/password", to(CORE)),
    Route("/api/v1/drugs?q=paracetamol", to(CORE)),
    Route("/api/v1/facilities", to(CORE)),
    Route("/api/v1/prescribers/42/key", to(CORE)),
    Route("/api/v1/pharmacies/NT0100001/revoke", to(CORE)),
    # core: the national protocol (QĐ 808), facility and doctor side
    Route("/api/auth/dang-nhap-co-so-kham-chua-benh", to(CORE)),
    Route("/api/auth/dang-nhap-bac-si", to(CORE)),
    Route("/api/v1/them-bac-si", to(CORE)),
    Route("/api/v1/xoa-bac-si", to(CORE)),
    Route("/api/v1/gui-don-thuoc", to(CORE)),
    # core: the prescriber console
    Route("/console/prescriber", to(CORE)),
    Route("/console/prescriber/sign-in", to(CORE)),
    Route("/console/prescriber/prescriptions/01001K7Q2M9X-c", to(CORE)),
    Route("/console/api/policy", to(CORE)),
    Route("/console/api/icd10?q=J06", to(CORE)),
    Route("/static/console/console.js?v=abc123", to(CORE)),
    # gateway: OAuth API of the pharmacies
    Route("/gateway/v1/auth/token", to(GATEWAY)),
    Route("/gateway/v1/prescriptions/01001K7Q2M9X-c", to(GATEWAY)),
    Route("/gateway/v1/prescriptions/01001K7Q2M9X-c/dispenses", to(GATEWAY)),
    Route("/gateway/v1/dispenses", to(GATEWAY)),
    Route("/gateway/v1/dispenses/7/void", to(GATEWAY)),
    Route("/gateway/v1/dispenses/7/fhir", to(GATEWAY)),
    Route("/gateway/v1/prices", to(GATEWAY)),
    # gateway: the national protocol, pharmacy side (under /api/v1, yet the gateway's)
    Route("/api/v1/thong-tin-don-thuoc/25366VMA336R-c", to(GATEWAY)),
    Route("/api/v1/cap-nhat-don-thuoc", to(GATEWAY)),
    # gateway: the pharmacist console
    Route("/console/pharmacy", to(GATEWAY)),
    Route("/console/pharmacy/sign-in", to(GATEWAY)),
    Route("/console/pharmacy/api/lookup", to(GATEWAY)),
    Route("/console/pharmacy/dispenses/7", to(GATEWAY)),
    Route("/static/pharmacy/pharmacy.js", to(GATEWAY)),
    # portal: public pages and JSON, cached at the edge
    Route("/", to(PORTAL), cached=True),
    Route("/?lang=en", to(PORTAL), cached=True),
    Route("/search?q=thuoc+ho&province=01", to(PORTAL), cached=True),
    Route("/products/VD-12345-21", to(PORTAL), cached=True),
    Route("/products/VD-12345-21/history.svg", to(PORTAL), cached=True),
    Route("/outlets/42", to(PORTAL), cached=True),
    Route("/portal/api/v1/prices?q=paracetamol&sort=price", to(PORTAL), cached=True),
    Route("/portal/api/v1/prices.csv", to(PORTAL), cached=True),
    Route("/portal/api/v1/drugs/VD-12345-21/outlets", to(PORTAL), cached=True),
    # portal: the patient view (personal data: never cached) and assets
    Route("/rx/25366VMA336R-c", to(PORTAL)),
    Route("/rx/25366VMA336R-c/sign-out", to(PORTAL)),
    Route("/static/portal/portal.css", to(PORTAL)),
    # every service
    Route("/static/erx/erx.css", ANY),
    Route("/healthz", ANY),
    Route("/readyz", ANY),
    Route("/.well-known/jwks.json", ANY),
)

# Served by every instance to Prometheus only: the edge must not pass them on.
DENIED: tuple[str, ...] = ("/metrics",)

# Addresses the access log may only write with their query replaced (the patient link's key, a
# pasted link, a token in the address), and how it writes them; and addresses it writes as they are.
SECRET_ADDRESSES: dict[str, str] = {
    "/rx/25366VMA336R-c?k=SECRETKEY001": "/rx/25366VMA336R-c?...",
    "/rx/25366VMA336R-c?lang=en&K=SECRETKEY001": "/rx/25366VMA336R-c?...",
    "/rx?code=https%3A%2F%2Fx%2Frx%2F25366VMA336R-c%3Fk%3DSECRETKEY001": "/rx?...",
    "/api/v1/drugs?q=para&access_token=SECRETKEY001": "/api/v1/drugs?...",
}
PLAIN_ADDRESSES: tuple[str, ...] = (
    "/search?q=thuoc+ho&province=01",
    "/rx/25366VMA336R-c",
    "/products/x?kind=c&backcode=1",
    "/",
)
