"""The bench's own PostgreSQL cluster under var/bench/pg, with production durability settings.

Created once with initdb and reused: its data (the seeded volume) survives between runs. It runs
as the `postgres` user when the bench runs as root (PostgreSQL refuses root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# Production durability: every commit waits for its WAL flush (no synchronous_commit=off, no
# fsync=off). Sizes fit a 2-core, 24 GiB machine that also runs the server and the load generator.
SETTINGS = {
    "synchronous_commit": "on",
    "fsync": "on",
    "full_page_writes": "on",
    "shared_buffers": "2GB",
    "effective_cache_size": "8GB",
    "work_mem": "16MB",
    "maintenance_work_mem": "512MB",
    "max_connections": "300",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "random_page_cost": "1.1",
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.track": "top",
    "log_min_duration_statement": "-1",
    "listen_addresses": "'127.0.0.1'",
}
DEFAULT_PORT = 55432


def bindir() -> Path:
    for path in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found (apt-get install -y postgresql postgresql-contrib)"
    )


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Cluster:
    root: Path
    port: int = DEFAULT_PORT
    user: str = "postgres"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def run_as(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(bindir() / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return cmd

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(*args), check=check, capture_output=True, text=True)

    def running(self) -> bool:
        if not (self.datadir / "postmaster.pid").exists():
            return False
        return self._run("pg_ctl", "-D", str(self.datadir), "status", check=False).returncode == 0

    def _initdb(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            self.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )

    def _write_settings(self) -> None:
        conf = self.datadir / "postgresql.conf"
        text = conf.read_text()
        marker = "include_if_exists = 'bench.conf'"
        if marker not in text:
            conf.write_text(text + f"\n{marker}\n")
        bench_conf = self.datadir / "bench.conf"
        bench_conf.write_text(
            "# Written by bench/pg.py on every start.\n"
            + "".join(f"{k} = {v}\n" for k, v in SETTINGS.items())
            + f"port = {self.port}\n"
            + f"unix_socket_directories = '{self.root}'\n"
        )
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(bench_conf, pw.pw_uid, pw.pw_gid)

    def start(self) -> None:
        """Start the cluster (creating it on first use); reuse it if it already runs."""
        if not (self.datadir / "PG_VERSION").exists():
            shutil.rmtree(self.datadir, ignore_errors=True)
            self._initdb()
        port_file = self.root / "port"
        if self.running():
            self.port = int(port_file.read_text()) if port_file.exists() else self.port
            return
        if not _port_free(self.port):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = int(s.getsockname()[1])
        self._write_settings()
        port_file.write_text(str(self.port))
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.root / "log"), "-w", "-t", "120", "start")

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop", check=False)

    def psql(self, database: str, sql: str) -> str:
        out = self._run(
            "psql", "-X", "-q", "-At", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database,
            "-c", sql,
        )  # fmt: skip
        return out.stdout


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")
