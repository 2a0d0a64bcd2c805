"""A throwaway PostgreSQL cluster for the test session, started from the installed binaries.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
`postgres` user. Set ERX_TEST_POSTGRES_URL to use an existing server instead.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def _bindir() -> Path:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    raise RuntimeError("PostgreSQL server binaries not found: install them (apt-get install -y postgresql)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    host: str
    port: int
    user: str
    datadir: Path | None = None
    run_as: str | None = None
    bindir: Path | None = None
    # The server options it was started with (to start it again after `halt`).
    options: str = ""

    def halt(self) -> None:
        """Shut the server down (fast: connections are cut) without removing its data."""
        assert self.datadir is not None
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the server again after `halt`, with the same options."""
        assert self.datadir is not None
        log = str(self.datadir.parent / "log")
        self._run("pg_ctl", "-D", str(self.datadir), "-o", self.options, "-l", log, "-w", "start")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        assert self.bindir is not None
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True)

    async def execute(self, *statements: str) -> None:
        """Run administrative statements (CREATE/DROP DATABASE) outside any transaction."""
        import asyncpg

        conn = await asyncpg.connect(host=self.host, port=self.port, user=self.user, database="postgres")
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def stop(self) -> None:
        if self.datadir is not None:
            try:
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "stop")
            finally:
                shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_cluster(*, own: bool = False) -> Cluster:
    """The session's cluster (ERX_TEST_POSTGRES_URL when set), or always a new one with `own`."""
    url = None if own else os.environ.get("ERX_TEST_POSTGRES_URL")
    if url:
        # postgresql://user@host:port
        rest = url.split("://", 1)[1]
        user, _, hostport = rest.partition("@")
        host, _, port = hostport.partition(":")
        return Cluster(host=host, port=int(port.split("/")[0] or 5432), user=user)
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="erx-pg-"))
    datadir = root / "data"
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        pw = pwd.getpwnam(run_as)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    cluster = Cluster("127.0.0.1", free_port(), "postgres", datadir, run_as, bindir)
    cluster._run(
        "initdb", "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"
    )
    options = (
        f"-p {cluster.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
        "-c shared_buffers=256MB"
    )
    cluster.options = options
    cluster._run("pg_ctl", "-D", str(datadir), "-o", options, "-l", str(root / "log"), "-w", "start")
    return cluster


def start_standby(primary: Cluster) -> Cluster:
    """A streaming replica of `primary` (pg_basebackup -R) on a port of its own, read-only."""
    assert primary.bindir is not None and primary.datadir is not None
    root = Path(tempfile.mkdtemp(prefix="erx-pg-standby-"))
    datadir = root / "data"
    if primary.run_as:
        pw = pwd.getpwnam(primary.run_as)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    standby = Cluster("127.0.0.1", free_port(), primary.user, datadir, primary.run_as, primary.bindir)
    standby._run(
        "pg_basebackup",
        f"--host={primary.host}",
        f"--port={primary.port}",
        f"--username={primary.user}",
        f"--pgdata={datadir}",
        "--write-recovery-conf",
        "--wal-method=stream",
        "--checkpoint=fast",
    )
    options = (
        f"-p {standby.port} -k {root} -c listen_addresses=127.0.0.1 -c hot_standby=on "
        "-c max_connections=300 -c shared_buffers=128MB"
    )
    standby._run("pg_ctl", "-D", str(datadir), "-o", options, "-l", str(root / "log"), "-w", "start")
    return standby
