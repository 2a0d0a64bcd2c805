"""Every path reaches the service that serves it: the nginx configs and the Ingress, parsed.

nginx: exact (`=`) locations first, then the longest prefix; the tests refuse regex locations,
so that is the whole algorithm. Ingress: Exact first, then the longest Prefix matched by whole
path segments (the Kubernetes rule). The table is tests/deploy/routes.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.deploy.routes import DENIED, PLAIN_ADDRESSES, ROUTES, SECRET_ADDRESSES, Route

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONFIGS = {
    "deploy/nginx.conf": ROOT / "deploy" / "nginx.conf",
    "deploy/compose/nginx.conf": ROOT / "deploy" / "compose" / "nginx.conf",
}
INGRESS = ROOT / "deploy" / "k8s" / "apps" / "ingress.yaml"
SERVICES = {"erx-core": "core", "erx-gateway": "gateway", "erx-portal": "portal"}
DENY = "denied at the edge"


# ---- nginx -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    modifier: str  # "=", "^~" or "" (prefix)
    path: str
    body: str

    @property
    def target(self) -> str | None:
        """The upstream this location sends to, DENY for a `return 4xx`, else None."""
        upstream = re.search(r"\bproxy_pass\s+https?://([\w.-]+)", self.body)
        if upstream:
            return upstream.group(1)
        if re.search(r"\breturn\s+4\d\d\b", self.body):
            return DENY
        return None

    @property
    def cached(self) -> bool:
        zone = re.search(r"\bproxy_cache\s+(\S+?)\s*;", self.body)
        return zone is not None and zone.group(1) != "off"


def strip_comments(text: str) -> str:
    lines = []
    for line in text.splitlines():
        quote = ""
        for index, char in enumerate(line):
            if quote:
                quote = "" if char == quote else quote
            elif char in "\"'":
                quote = char
            elif char == "#":
                line = line[:index]
                break
        lines.append(line)
    return "\n".join(lines)


def block_body(text: str, start: int) -> str:
    """The text between the `{` at `start` and its matching `}` (quotes skipped)."""
    depth, quote = 0, ""
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : index]
    raise ValueError("unbalanced braces")


@dataclass(frozen=True)
class NginxServer:
    locations: tuple[Location, ...]
    directives: str  # the server block without its locations
    http: str  # everything outside the server blocks (upstreams, cache paths, maps)

    def match(self, uri: str) -> Location | None:
        path = uri.split("?", 1)[0]
        for location in self.locations:
            if location.modifier == "=" and location.path == path:
                return location
        prefixes = [loc for loc in self.locations if loc.modifier != "=" and path.startswith(loc.path)]
        return max(prefixes, key=lambda loc: len(loc.path), default=None)


LOCATION = re.compile(r"\blocation\s+(?:(=|\^~|~\*?)\s*)?(\S+)\s*\{([^{}]*)\}")


def parse_nginx(text: str) -> NginxServer:
    text = strip_comments(text)
    servers = []
    http = text
    for match in re.finditer(r"(?m)^\s*server\s*\{", text):
        body = block_body(text, match.end() - 1)
        servers.append(body)
        http = http.replace(body, "")
    routing = [body for body in servers if "location" in body]
    assert len(routing) == 1, "expected exactly one server block with locations"
    body = routing[0]
    locations = tuple(Location(m.group(1) or "", m.group(2), m.group(3)) for m in LOCATION.finditer(body))
    assert not any(loc.modifier.startswith("~") for loc in locations), "regex locations are not allowed"
    assert body.count("location") == len(locations), "a location the parser could not read"
    return NginxServer(locations, LOCATION.sub("", body), http)


@pytest.fixture(scope="module", params=sorted(NGINX_CONFIGS))
def nginx(request: pytest.FixtureRequest) -> NginxServer:
    return parse_nginx(NGINX_CONFIGS[request.param].read_text(encoding="utf-8"))


@pytest.mark.parametrize("route", ROUTES, ids=[r.path for r in ROUTES])
def test_nginx_sends_each_path_to_its_service(nginx: NginxServer, route: Route) -> None:
    location = nginx.match(route.path)
    assert location is not None, f"no location for {route.path}"
    assert location.target in route.services, f"{route.path} goes to {location.target}"
    assert location.cached == route.cached, f"{route.path}: cached={location.cached}"


@pytest.mark.parametrize("path", DENIED)
def test_nginx_never_passes_on_metrics(nginx: NginxServer, path: str) -> None:
    location = nginx.match(path)
    assert location is not None
    assert location.target == DENY


def test_nginx_upstreams_are_the_three_services(nginx: NginxServer) -> None:
    upstreams = set(re.findall(r"\bupstream\s+([\w-]+)\s*\{", nginx.http))
    assert upstreams == {"core", "gateway", "portal"}
    assert {loc.target for loc in nginx.locations} <= upstreams | {DENY}
    assert re.search(r"\bproxy_cache_path\s+\S+.*\bkeys_zone=portal:", nginx.http)


def test_nginx_forwarding_headers_are_set_for_every_location(nginx: NginxServer) -> None:
    # A proxy_set_header inside a location would silently drop every server-level one.
    assert not [loc.path for loc in nginx.locations if "proxy_set_header" in loc.body]
    for header, value in [
        ("X-Forwarded-For", "$remote_addr"),
        ("X-Forwarded-Proto", "$scheme"),
        ("X-Request-ID", "$erx_request_id"),
        ("Host", "$host"),
        ("Connection", '""'),
    ]:
        assert re.search(
            rf"\bproxy_set_header\s+{re.escape(header)}\s+{re.escape(value)}\s*;", nginx.directives
        )
    assert re.search(r"\bproxy_http_version\s+1\.1\s*;", nginx.directives)
    assert re.search(r"\bmap\s+\$http_x_request_id\s+\$erx_request_id\b", nginx.http)


def logged_uri(nginx: NginxServer, uri: str) -> str:
    """What the access log writes for `uri`: the `$erx_logged_uri` map, evaluated as nginx does."""
    block = re.search(r"\bmap\s+\$request_uri\s+\$erx_logged_uri\s*\{([^{}]*)\}", nginx.http)
    assert block is not None, "no map of the logged address"
    entries = [
        re.fullmatch(r'\s*("[^"]*"|\S+)\s+("[^"]*"|\S+)\s*;\s*', line)
        for line in block.group(1).strip().splitlines()
    ]
    assert all(entries), "a map line the test could not read"
    pairs = {m.group(1).strip('"'): m.group(2).strip('"') for m in entries if m is not None}
    for source, value in pairs.items():
        if source == "default":
            continue
        assert source.startswith("~*")  # a case-insensitive regex; PCRE's named groups in Python's spelling
        found = re.match(source[2:].replace("(?<", "(?P<"), uri, re.IGNORECASE)
        if found is not None:
            for name, captured in found.groupdict().items():
                value = value.replace(f"${name}", captured)
            return value
    return pairs["default"].replace("$request_uri", uri)


def test_nginx_logs_no_secret_of_an_address(nginx: NginxServer) -> None:
    log_format = re.search(r"\blog_format\s+erx\s+((?:'[^']*'\s*)+);", nginx.http)
    assert log_format is not None
    fields = log_format.group(1)
    assert "$erx_logged_uri" in fields
    for raw in ("$request ", '$request"', "$request_uri", "$args", "$query_string", "$http_referer"):
        assert raw not in fields, raw
    for uri, logged in SECRET_ADDRESSES.items():
        assert logged_uri(nginx, uri) == logged, uri
    for uri in PLAIN_ADDRESSES:
        assert logged_uri(nginx, uri) == uri


def test_nginx_caches_only_where_a_location_says_so(nginx: NginxServer) -> None:
    assert not re.search(r"\bproxy_cache\s", nginx.directives)
    assert not re.search(r"\bproxy_cache\s", nginx.http)
    assert not re.search(r"\bproxy_(next_upstream)\s[^;]*non_idempotent", nginx.directives)


def test_a_misrouted_patient_view_is_caught() -> None:
    """The checks above would fail if /rx/ went to the gateway or were cached."""
    text = NGINX_CONFIGS["deploy/nginx.conf"].read_text(encoding="utf-8")
    rx = re.search(r"location /rx/\s*\{[^}]*\}", text)
    assert rx is not None
    for broken in [
        "location /rx/ { proxy_pass http://gateway; }",
        "location /rx/ { proxy_pass http://portal; proxy_cache portal; }",
    ]:
        server = parse_nginx(text.replace(rx.group(0), broken))
        location = server.match("/rx/25366VMA336R-c")
        assert location is not None
        route = next(r for r in ROUTES if r.path.startswith("/rx/"))
        assert location.target not in route.services or location.cached != route.cached


# ---- Ingress ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngressPath:
    path: str
    kind: str  # Exact or Prefix
    service: str
    port: str

    def matches(self, path: str) -> bool:
        if self.kind == "Exact":
            return path == self.path
        if self.path == "/":
            return True
        want = self.path.rstrip("/").split("/")
        return path.split("/")[: len(want)] == want


def ingress_paths() -> list[IngressPath]:
    doc = yaml.safe_load(INGRESS.read_text(encoding="utf-8"))
    assert doc["kind"] == "Ingress"
    paths = []
    for rule in doc["spec"]["rules"]:
        for item in rule["http"]["paths"]:
            backend = item["backend"]["service"]
            paths.append(
                IngressPath(item["path"], item["pathType"], backend["name"], backend["port"]["name"])
            )
    return paths


def ingress_match(paths: list[IngressPath], uri: str) -> IngressPath | None:
    path = uri.split("?", 1)[0]
    exact = [p for p in paths if p.kind == "Exact" and p.matches(path)]
    if exact:
        return exact[0]
    prefixes = [p for p in paths if p.kind == "Prefix" and p.matches(path)]
    return max(prefixes, key=lambda p: len(p.path.rstrip("/")), default=None)


def test_ingress_path_types_are_portable() -> None:
    paths = ingress_paths()
    assert paths
    assert {p.kind for p in paths} <= {"Exact", "Prefix"}, "ImplementationSpecific differs per controller"
    assert {p.service for p in paths} <= set(SERVICES)
    assert {p.port for p in paths} == {"http"}
    assert len({(p.path, p.kind) for p in paths}) == len(paths), "a path is listed twice"


@pytest.mark.parametrize("route", ROUTES, ids=[r.path for r in ROUTES])
def test_ingress_sends_each_path_to_its_service(route: Route) -> None:
    match = ingress_match(ingress_paths(), route.path)
    assert match is not None, f"no Ingress path for {route.path}"
    assert SERVICES[match.service] in route.services, f"{route.path} goes to {match.service}"


@pytest.mark.parametrize("path", DENIED)
def test_ingress_does_not_route_metrics(path: str) -> None:
    assert ingress_match(ingress_paths(), path) is None


def test_ingress_backends_exist() -> None:
    services = {}
    for manifest in (ROOT / "deploy" / "k8s" / "apps").glob("*.yaml"):
        for doc in yaml.safe_load_all(manifest.read_text(encoding="utf-8")):
            if doc and doc.get("kind") == "Service":
                services[doc["metadata"]["name"]] = {port["name"] for port in doc["spec"]["ports"]}
    for path in ingress_paths():
        assert path.port in services.get(path.service, set()), f"{path.path}: {path.service}:{path.port}"
