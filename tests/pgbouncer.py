"""PgBouncer from the machine's packages in front of the test cluster, in transaction mode.

PgBouncer refuses to run as root, so under root it runs as `postgres`, like the cluster.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.pg import Cluster, free_port

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@dataclass(frozen=True)
class Bouncer:
    host: str
    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"


def version() -> str:
    out = subprocess.run([BINARY, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0].split()[-1]


@contextmanager
def pgbouncer(cluster: Cluster, *, pool_size: int = 4) -> Iterator[Bouncer]:
    """Transaction pooling with few server connections, so clients keep changing servers."""
    root = Path(tempfile.mkdtemp(prefix="erx-pgbouncer-"))
    port = free_port()
    (root / "users.txt").write_text(f'"{cluster.user}" ""\n')
    (root / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={cluster.host} port={cluster.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {root / "users.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = {root / "pgbouncer.log"}
pidfile = {root / "pgbouncer.pid"}
"""
    )
    command = [BINARY, str(root / "pgbouncer.ini")]
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        for path in (root, *root.iterdir()):
            os.chown(path, pw.pw_uid, pw.pw_gid)
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (root / "pgbouncer.log").read_text() if (root / "pgbouncer.log").exists() else ""
                    raise RuntimeError(f"pgbouncer did not start: {log}") from None
                time.sleep(0.05)
        yield Bouncer("127.0.0.1", port, cluster.user)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
