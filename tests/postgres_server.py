"""A throwaway PostgreSQL server for tests: Debian's binaries, a temporary data folder, a
loopback port, trust authentication. Installed by ``scripts/install-postgres.sh``."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found or found[-1] is None:
        raise RuntimeError(
            f"PostgreSQL's {name} was not found; run scripts/install-postgres.sh "
            "(the README's test command does)"
        )
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server(folder: Path) -> Iterator[str]:
    """Start PostgreSQL with its data in ``folder``; yield its connection URL; stop it.

    PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user that
    Debian's package creates.
    """
    as_user: list[str] = []
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()

    def run(*command: str) -> None:
        done = subprocess.run([*as_user, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr or done.stdout}")

    run(_bin("initdb"), "-D", str(data), "-U", "ttc", "-A", "trust", "--no-sync")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = folder / "server.log"
    run(_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start")
    try:
        yield f"postgresql://ttc@127.0.0.1:{port}/postgres"
    finally:
        run(_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
