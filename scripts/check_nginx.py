"""Check nginx configs with the real nginx: `nginx -t`, then the routing table end to end.

For each config (an http{}-level snippet) a test copy is made in a scratch directory: upstream
servers become 127.0.0.1 (one port per upstream), listen ports become free loopback ports,
certificate, cache and log paths point into the scratch directory. Then:

1. `nginx -t` on it;
2. nginx runs in front of three stub upstreams that answer who they are (with
   `Cache-Control: public`, so anything the proxy may cache, it will), and every route of
   tests/deploy/routes.py is requested twice: the right service must answer, X-Forwarded-For must
   be the client (a forged one is replaced), X-Forwarded-Proto the scheme, X-Request-ID kept when
   sane and made up otherwise, and only the public portal may come from the cache;
3. the access log writes no secret of an address (the patient link's `?k=`): each address of
   tests/deploy/routes.py SECRET_ADDRESSES is logged as its table says, PLAIN_ADDRESSES as they are.

Usage: check_nginx.py CONFIG... (run by scripts/check-deploy.sh; needs nginx and openssl).
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.deploy.routes import DENIED, PLAIN_ADDRESSES, ROUTES, SECRET_ADDRESSES  # noqa: E402

UPSTREAMS = ("core", "gateway", "portal")
HOST = "donthuoc.example.gov.vn"
FORGED = "203.0.113.66"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Stub(BaseHTTPRequestHandler):
    """Answers with its service name and the headers the proxy sent."""

    service = "?"

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "service": self.service,
                "path": self.path,
                "x_forwarded_for": self.headers.get("X-Forwarded-For"),
                "x_forwarded_proto": self.headers.get("X-Forwarded-Proto"),
                "x_request_id": self.headers.get("X-Request-ID"),
                "host": self.headers.get("Host"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=60")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def stubs() -> Iterator[dict[str, int]]:
    servers = []
    ports = {}
    for name in UPSTREAMS:
        handler = type(f"Stub_{name}", (Stub,), {"service": name})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        ports[name] = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    try:
        yield ports
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_copy(text: str, scratch: Path, ports: dict[str, int]) -> tuple[str, dict[str, int]]:
    """The config rewritten to run here, and the loopback port of each listen (80/443)."""

    def upstream(match: re.Match[str]) -> str:
        name, body = match.group(1), match.group(2)
        body = re.sub(r"\bserver\s+[^\s;:]+:\d+", f"server 127.0.0.1:{ports[name]}", body)
        return f"upstream {name} {{{body}}}"

    text = re.sub(r"\bupstream\s+(\w+)\s*\{([^{}]*)\}", upstream, text)
    listens: dict[str, int] = {}

    def listen(match: re.Match[str]) -> str:
        original, rest = match.group(1), match.group(2)
        if original.startswith("["):
            return ""  # IPv6 twin: not needed here
        port = listens.setdefault(original, free_port())
        return f"listen 127.0.0.1:{port}{rest};"

    text = re.sub(r"\blisten\s+(\[::\]:\d+|\d+)([^;]*);", listen, text)
    text = text.replace("/etc/nginx/tls/", f"{scratch}/")
    text = re.sub(r"/var/cache/nginx/\w+", str(scratch / "cache"), text)
    text = re.sub(r"/var/log/nginx/[\w.]+", str(scratch / "access.log"), text)
    return text, listens


def write_main(scratch: Path, snippet: Path) -> Path:
    main = scratch / "nginx.conf"
    main.write_text(
        f"pid {scratch}/nginx.pid;\n"
        f"error_log {scratch}/error.log warn;\n"
        "worker_processes 1;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        f"    client_body_temp_path {scratch}/body;\n"
        f"    proxy_temp_path {scratch}/proxy;\n"
        f"    include {snippet};\n"
        "}\n",
        encoding="utf-8",
    )
    return main


def request(port: int, tls: bool, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=5, context=context
        )
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": HOST, **headers})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def check_routes(port: int, tls: bool) -> list[str]:
    problems = []
    scheme = "https" if tls else "http"
    for index, route in enumerate(ROUTES):
        sane_id = f"check-{index:04d}-abcdef"
        for attempt, headers in enumerate(
            [{"X-Forwarded-For": FORGED, "X-Request-ID": sane_id}, {"X-Request-ID": "bad id\t<script>"}]
        ):
            status, answer_headers, body = request(port, tls, route.path, headers)
            if status != 200:
                problems.append(f"{route.path}: status {status}")
                break
            seen = json.loads(body)
            cache = answer_headers.get("x-cache-status", "")
            if seen["service"] not in route.services:
                problems.append(f"{route.path}: answered by {seen['service']}")
            if seen["x_forwarded_for"] != "127.0.0.1":
                problems.append(f"{route.path}: X-Forwarded-For {seen['x_forwarded_for']!r}")
            if seen["x_forwarded_proto"] != scheme:
                problems.append(f"{route.path}: X-Forwarded-Proto {seen['x_forwarded_proto']!r}")
            # The answer always carries this request's id; the upstream saw it unless the
            # answer came from the cache (whose body is the first request's).
            expected = sane_id if attempt == 0 else None
            answered_id = answer_headers.get("x-request-id", "")
            if expected is not None and answered_id != expected:
                problems.append(f"{route.path}: answer has X-Request-ID {answered_id!r}, not the caller's")
            if expected is None and not re.fullmatch(r"[0-9a-f]{32}", answered_id):
                problems.append(f"{route.path}: insane X-Request-ID not replaced ({answered_id!r})")
            if cache != "HIT" and seen["x_request_id"] != answered_id:
                problems.append(f"{route.path}: upstream saw X-Request-ID {seen['x_request_id']!r}")
            if attempt == 1 and route.cached and cache not in {"HIT", "STALE", "UPDATING", "REVALIDATED"}:
                problems.append(f"{route.path}: not served from the cache ({cache or 'no cache'})")
            if not route.cached and cache:
                problems.append(f"{route.path}: went through the cache ({cache})")
    for path in DENIED:
        status, _, _ = request(port, tls, path, {})
        if status != 404:
            problems.append(f"{path}: status {status}, expected 404 at the edge")
    return problems


def check_access_log(port: int, tls: bool, log: Path) -> list[str]:
    """The access log's line of each address: secrets replaced, everything else as asked."""
    problems = []
    for path in [*SECRET_ADDRESSES, *PLAIN_ADDRESSES]:
        request(port, tls, path, {})
    text = log.read_text(encoding="utf-8") if log.exists() else ""
    if "SECRETKEY001" in text:
        problems.append("the access log holds a secret query value")
    for path, logged in [*SECRET_ADDRESSES.items(), *((p, p) for p in PLAIN_ADDRESSES)]:
        if f'"GET {logged} HTTP/1.1"' not in text:
            problems.append(f"{path}: not logged as {logged}")
    return problems


def check(config: Path) -> list[str]:
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="erx-nginx-") as name, stubs() as ports:
        scratch = Path(name)
        scratch.chmod(0o755)  # nginx workers run as an unprivileged user when started by root
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
                *("-nodes", "-subj", f"/CN={HOST}", "-days", "1"),
                *("-keyout", str(scratch / "erx.key"), "-out", str(scratch / "erx.crt")),
            ],
            check=True,
            capture_output=True,
        )
        text, listens = test_copy(config.read_text(encoding="utf-8"), scratch, ports)
        snippet = scratch / "erx.conf"
        snippet.write_text(text, encoding="utf-8")
        main = write_main(scratch, snippet)
        nginx = ["nginx", "-p", str(scratch), "-c", str(main)]
        syntax = subprocess.run([*nginx, "-t", "-q"], capture_output=True, text=True)
        if syntax.returncode != 0:
            return [f"nginx -t: {syntax.stderr.strip()}"]
        print(f"ok   {config.relative_to(ROOT)}: nginx -t")
        tls = "443" in listens
        port = listens["443"] if tls else listens["80"]
        process = subprocess.Popen([*nginx, "-g", "daemon off;"], stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            problems = check_routes(port, tls)
            problems += check_access_log(port, tls, scratch / "access.log")
            if "80" in listens and tls:
                status, headers, _ = request(listens["80"], False, "/rx/x", {})
                if status != 301 or not headers.get("location", "").startswith("https://"):
                    problems.append(f"port 80 answers {status} instead of a redirect to https")
        finally:
            process.terminate()
            process.wait(timeout=10)
        if problems:
            log = scratch / "error.log"
            lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
            problems += [f"nginx error.log: {line}" for line in lines[-5:]]
        else:
            print(f"ok   {config.relative_to(ROOT)}: {len(ROUTES) + len(DENIED)} routes through a real nginx")
    return problems


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    if shutil.which("nginx") is None or shutil.which("openssl") is None:
        print("FAIL nginx and openssl are needed")
        return 1
    failures = 0
    for name in argv:
        for problem in check((ROOT / name).resolve()):
            print(f"FAIL {name}: {problem}")
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
