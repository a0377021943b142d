"""A throwaway PostgreSQL server for the storage tests: initdb + pg_ctl in a temporary directory.

``pg_server`` (session-scoped fixture) yields a ``PGServer`` with ``url(dbname)`` and ``new_database()``.
The server runs as the ``postgres`` user (initdb refuses root) on a free port on 127.0.0.1 with its
socket inside the temporary directory, and is stopped and removed at the end of the session. When the
binaries, the ``postgres`` user or psycopg are missing, every test that asks for it is skipped with
the reason. Import the fixture into a test module with ``from pgserver import pg_server  # noqa: F401``.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("LRKIT_PG_BIN", "/usr/lib/postgresql/15/bin"))


def unavailable_reason() -> str | None:
    """Why a throwaway server cannot be started here, or None when it can."""
    for tool in ("initdb", "pg_ctl"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL binaries not found ({PG_BIN / tool} is missing; set LRKIT_PG_BIN)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run initdb as"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PGServer:
    """A running server: ``url(db)`` is an SQLAlchemy URL for Optuna's RDBStorage."""

    root: Path
    port: int
    _names: Iterator[int] = field(default_factory=itertools.count)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """Create an empty database and return its URL (one per test keeps tests independent)."""
        import psycopg

        name = f"lrkit_test_{next(self._names)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(_quote(c) for c in cmd)]


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def start_server() -> PGServer:
    """initdb + pg_ctl start into a new temporary directory; raise RuntimeError with the log on failure."""
    root = Path(tempfile.mkdtemp(prefix="lrkit-pg-"))
    os.chmod(root, 0o755)
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        uid, gid = pwd.getpwnam("postgres")[2:4]
        os.chown(root, uid, gid)
        os.chown(sock, uid, gid)
    port = _free_port()
    run = lambda cmd: subprocess.run(_as_postgres(cmd), capture_output=True, text=True, timeout=120)  # noqa: E731
    init = run([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"])
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    # fsync off: a throwaway server needs no durability, and it makes schema creation ~10x faster
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
    start = run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"])
    if start.returncode != 0:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n{log}")
    return PGServer(root=root, port=port)


def stop_server(server: PGServer) -> None:
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(server.root / "data"), "-m", "immediate",
                                 "-w", "stop"]), capture_output=True, timeout=60)
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PGServer]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = start_server()
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty storage URL on each backend: the one conformance suite runs on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lrkit.db'}"
    server = request.getfixturevalue("pg_server")
    return server.new_database()
