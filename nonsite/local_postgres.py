"""A PostgreSQL server of our own, from the machine's ``initdb`` and ``pg_ctl``: the cluster
demo's database, and the primary and standby the failover tests kill and promote.

Trust authentication on the loopback address, its socket in its own directory. As root it
runs as the user ``postgres`` (PostgreSQL refuses root). ``settings`` are the server's ``-c``
options: by default the demo's (no fsync: a demo's data are throwaway); a test of durability
passes its own. A standby is a ``pg_basebackup`` of a running primary, streaming from it
(``start_replica_of``), and can be promoted.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa

from nonsite.errors import StartupError

HOST = "127.0.0.1"
DATABASE = "nonsite"
LOG_TAIL_CHARS = 2000
PG_TEMP_PREFIX = "nonsite-demo-pg-"
SOCKET_PATH_MAX = 100  # a Unix socket's path is at most 107 bytes
INSTALL_POSTGRES = "apt-get install postgresql"
# The demo's: fast, not durable.
THROWAWAY = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.parent.name)) or (0,)


def postgres_bin_dir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: Debian's newest /usr/lib/postgresql/*/bin,
    else where PATH has them."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version_key)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is not None and shutil.which("pg_ctl") is not None:
        return Path(initdb).parent
    return None


def log_tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pg_temp_target(pg_home: Path) -> Path | None:
    """The temporary directory ``pg_home`` links to (see :class:`PrivatePostgres`), if any."""
    if not pg_home.is_symlink():
        return None
    target = pg_home.resolve()
    temp = Path(tempfile.gettempdir()).resolve()
    if target.parent == temp and target.name.startswith(PG_TEMP_PREFIX):
        return target
    return None


class PrivatePostgres:
    """A throwaway PostgreSQL server: ``initdb`` into ``home/data``, ``pg_ctl`` on ``port`` of
    the loopback address, trust authentication, its socket in ``home``. As root it runs as
    the user ``postgres`` (PostgreSQL refuses root); when that user cannot enter ``home``
    (a private parent directory) ``home`` links to a temporary directory, removed at stop."""

    def __init__(
        self,
        bin_dir: Path,
        home: Path,
        port: int,
        *,
        settings: Mapping[str, str] | None = None,
        database: str = DATABASE,
    ) -> None:
        self.bin_dir = bin_dir
        self.home = home
        self.port = port
        self.settings = dict(THROWAWAY if settings is None else settings)
        self.database = database
        self.temp: Path | None = pg_temp_target(home)
        self._as_user: list[str] = []
        self._owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            import pwd  # noqa: PLC0415 - POSIX only, and only as root

            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise StartupError(
                    "running as root, the demo runs PostgreSQL as the user postgres, which does "
                    f"not exist here: `{INSTALL_POSTGRES}` creates it"
                ) from None
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            self._as_user = [runuser, "-u", "postgres", "--"]
            self._owner = (user.pw_uid, user.pw_gid)

    @property
    def real_home(self) -> Path:
        """Where the files are: ``home``, or the temporary directory it links to (reached
        through the link, the user postgres could not pass the directories above it)."""
        return self.temp or self.home

    @property
    def data(self) -> Path:
        return self.real_home / "data"

    @property
    def log_path(self) -> Path:
        return self.real_home / "postgresql.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{self.database}"

    def _run(self, program: str, *args: str, timeout: float = 120.0) -> str:
        """Run one of PostgreSQL's programs; its error output raised as a StartupError."""
        done = subprocess.run(  # noqa: S603 - the machine's PostgreSQL programs, our arguments
            [*self._as_user, str(self.bin_dir / program), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C is the demo's, not theirs
        )
        if done.returncode != 0:
            raise StartupError(
                f"PostgreSQL's {program} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-800:]}"
            )
        return done.stdout

    def _make_home(self) -> None:
        self.home.mkdir(parents=True)
        if self._owner is None:
            return
        os.chown(self.home, *self._owner)
        if self._can_enter(self.home):
            return
        # The user postgres cannot reach the demo directory (e.g. under /tmp/pytest-of-root).
        self.home.rmdir()
        self.temp = Path(tempfile.mkdtemp(prefix=PG_TEMP_PREFIX))
        os.chown(self.temp, *self._owner)
        self.home.symlink_to(self.temp, target_is_directory=True)

    def _can_enter(self, path: Path) -> bool:
        return (
            subprocess.run(  # noqa: S603 - runuser and test, fixed arguments
                [*self._as_user, "test", "-w", str(path)],
                capture_output=True,
                check=False,
                timeout=30,
                start_new_session=True,
            ).returncode
            == 0
        )

    def start(self) -> None:
        """A new server, and its database."""
        self._make_home()
        self._run(
            "initdb",
            *("-D", str(self.data), "-A", "trust", "-U", "postgres"),
            *("-E", "UTF8", "--locale=C", "--no-sync"),
        )
        # Replication connections from the loopback address (a standby's pg_basebackup).
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host replication postgres {HOST}/32 trust\n")
        self._pg_ctl_start()
        admin = sa.create_engine(
            f"postgresql+psycopg://postgres@{HOST}:{self.port}/postgres",
            isolation_level="AUTOCOMMIT",
        )
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{self.database}"'))
        finally:
            admin.dispose()

    def start_replica_of(self, primary: PrivatePostgres, name: str) -> None:
        """A hot standby streaming from ``primary`` (running), known to it as ``name`` (its
        ``synchronous_standby_names`` may name it)."""
        self._make_home()
        source = f"host={HOST} port={primary.port} user=postgres application_name={name}"
        self._run(
            "pg_basebackup",
            *("-D", str(self.data), "-d", source, "-R", "-X", "stream", "--no-sync"),
            "--checkpoint=fast",  # not a spread checkpoint: minutes of waiting otherwise
        )
        self._pg_ctl_start()

    def prepare_home(self) -> None:
        """An empty home the server's user owns, for a data directory made by another
        program (a backup tool's restore), started with :meth:`start_restored`."""
        self._make_home()

    def start_restored(self, timeout: float = 60.0) -> None:
        """Start on the data directory already in the home (restored), and wait until its
        recovery has ended and it takes writes."""
        self._pg_ctl_start()
        engine = sa.create_engine(self.url)
        deadline = time.monotonic() + timeout
        try:
            while True:
                with engine.connect() as conn:
                    if not conn.execute(sa.text("SELECT pg_is_in_recovery()")).scalar_one():
                        return
                if time.monotonic() > deadline:
                    raise StartupError(f"the restored server is still recovering after {timeout} s")
                time.sleep(0.1)
        finally:
            engine.dispose()

    def _pg_ctl_start(self) -> None:
        real = self.real_home.resolve()
        sockets = str(real) if len(f"{real}/.s.PGSQL.{self.port}") <= SOCKET_PATH_MAX else ""
        options = " ".join(
            [
                f"-p {self.port} -c listen_addresses={HOST}",
                f"-c unix_socket_directories='{sockets}'",
                *(f"-c {key}={value}" for key, value in self.settings.items()),
            ]
        )
        try:
            self._run(
                "pg_ctl",
                *("-D", str(self.data), "-l", str(self.log_path), "-o", options),
                *("-w", "-t", "60", "start"),
            )
        except StartupError as exc:
            raise StartupError(f"{exc}\n{log_tail(self.log_path)}") from None

    def promote(self) -> None:
        """A standby becomes a primary (waits until it accepts writes)."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "promote")

    def kill(self) -> None:
        """SIGKILL the postmaster, as a host's loss would end it (its children follow)."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def pid(self) -> int | None:
        try:
            return int(self.data.joinpath("postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self, *, immediate: bool = False) -> None:
        """Stop the server (fast: its connections are ended), or kill it if it does not stop;
        remove the temporary directory, if it used one."""
        pid = self.pid()
        if pid is not None and alive(pid):
            for mode in ("immediate",) if immediate else ("fast", "immediate"):
                with contextlib.suppress(StartupError, subprocess.TimeoutExpired):
                    self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")
                    break
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.temp is not None:
            shutil.rmtree(self.temp, ignore_errors=True)
            with contextlib.suppress(OSError):
                self.home.unlink()
            self.temp = None
