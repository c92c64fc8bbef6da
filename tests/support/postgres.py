"""A PostgreSQL server for tests: the machine's own on 127.0.0.1:5432 if it answers,
otherwise a throwaway cluster started from Debian's `postgresql` binaries in a temp folder.
Each test session gets its own database, dropped at the end."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

SERVER_URL = os.environ.get("RESERVE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@contextmanager
def _throwaway_cluster() -> Iterator[str]:
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        raise RuntimeError("no PostgreSQL reachable and no initdb found: run "
                           "`apt-get install postgresql` (scripts/setup.sh does)")
    bindir = os.path.dirname(binaries[-1])
    folder = tempfile.mkdtemp(prefix="reserve-pg-")
    port = _free_port()
    run_as = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
    if run_as:
        shutil.chown(folder, "postgres")
    subprocess.run([*run_as, f"{bindir}/initdb", "-D", f"{folder}/data", "-U", "postgres",
                    "--auth=trust"], check=True, capture_output=True)
    subprocess.run([*run_as, f"{bindir}/pg_ctl", "-D", f"{folder}/data", "-w", "-l",
                    f"{folder}/log", "-o", f"-p {port} -k {folder} -h 127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, f"{bindir}/pg_ctl", "-D", f"{folder}/data", "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def server() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database."""
    if _reachable(SERVER_URL):
        yield SERVER_URL
        return
    with _throwaway_cluster() as url:
        deadline = time.monotonic() + 30
        while not _reachable(url) and time.monotonic() < deadline:
            time.sleep(0.2)
        yield url


@contextmanager
def database(server_url: str, prefix: str = "reserve_test") -> Iterator[str]:
    """A fresh database on `server_url`, dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def role_of(url: str) -> tuple[str, str]:
    """(user, password) of a URL made by `with_user`."""
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.password or "")


def with_user(url: str, user: str, password: str) -> str:
    """`url` connecting as `user` with `password` instead of its own user."""
    parts = urlsplit(url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def split_roles(server_url: str, database_url: str) -> Iterator[tuple[str, str]]:
    """(owner URL, service URL) for `database_url`, a database on `server_url`.

    The owner is a fresh login role with CREATEROLE that owns the database (so it may
    create tables in its public schema), as a database administrator would set it up. The
    service URL names a role that does not exist yet: `reserve db init` creates it. Both
    roles are dropped afterwards, their objects reassigned to the server's superuser.
    """
    suffix = secrets.token_hex(4)
    owner, service = f"reserve_owner_{suffix}", f"reserve_service_{suffix}"
    owner_password, service_password = secrets.token_hex(12), secrets.token_hex(12)
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
            sql.Identifier(owner), sql.Literal(owner_password)))
        connection.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
            sql.Identifier(name), sql.Identifier(owner)))
    try:
        yield (with_user(database_url, owner, owner_password),
               with_user(database_url, service, service_password))
    finally:
        with psycopg.connect(database_url, autocommit=True) as connection:
            for role in (service, owner):
                if connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                      (role,)).fetchone():
                    connection.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(
                        sql.Identifier(role)))
                    connection.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with psycopg.connect(server_url, autocommit=True) as connection:
            for role in (service, owner):
                connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
