"""Where recommendations live: an Optuna study in an SQLAlchemy database.

The contract (one conformance suite, ``tests/test_storage.py``, runs it against SQLite and PostgreSQL):

- ``open_storage(url)`` gives an Optuna ``RDBStorage`` with heartbeats, so a trial whose worker died
  (SIGKILL, power loss) is marked FAIL after ``grace_period`` seconds and re-queued by
  Optuna's ``RetryHeartbeatStaleTrialCallback`` with the same parameters.
- ``create_study(storage, name, config)`` creates the study once and stores its ``StudyConfig``
  (task, target, budget, optimizers, their LR ranges, trial count) as a study user attribute, so a
  worker needs only the study name and the URL. Creating it again with the same config loads it (a rerun
  continues the study); with another config it raises.
- ``load_study(storage, name)`` gives the study and its config, or raises naming the studies there are.
- Each trial keeps everything about itself in trial user attributes, under the keys of
  :mod:`lrkit.lrbench.study.schema`: what it trains and, once finished, its whole result. ``results`` and
  ``report`` read nothing else.

URLs: ``sqlite:///path.db`` (default ``sqlite:///lrkit.db``), ``postgresql+psycopg://user@host:port/db``;
a bare file path means SQLite.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path
from typing import Any

from lrkit.errors import LRKitError, require
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.schema import ATTR_CONFIG

DEFAULT_STORAGE = "sqlite:///lrkit.db"
HEARTBEAT_INTERVAL = 10          # seconds between a running trial's heartbeats
GRACE_PERIOD = 30                # a trial silent this long is stale: its worker is gone


_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")


def storage_url(url: str | None) -> str:
    """``None`` -> the default SQLite file; a bare path -> an SQLite URL; a URL is kept.

    Raises:
        LRKitError: a malformed SQLite URL (``sqlite://x.db`` would name the file ``'.db'`` on host ``x``;
            ``sqlite:x.db`` is no URL and would create a file called ``sqlite:x.db``): the message shows
            the right form, ``sqlite:///x.db``.
    """
    if not url:
        return DEFAULT_STORAGE
    scheme = re.match(r"([A-Za-z][A-Za-z0-9]*)(\+[A-Za-z0-9_]+)?:", url)
    if "://" not in url:
        if scheme and scheme.group(1).lower() in _SCHEMES:
            rest = url[scheme.end():].lstrip("/")
            raise LRKitError(f"storage {url!r} is not a URL: a database URL is written SCHEME://..., e.g. "
                             f"sqlite:///{rest or 'lrkit.db'} for the SQLite file {rest or 'lrkit.db'!r} (a bare path "
                             "means an SQLite file too)")
        return f"sqlite:///{url}"
    if url.startswith("sqlite") and not re.fullmatch(r"sqlite(\+\w+)?://(/.*)?", url, flags=re.S):
        rest = url.split("://", 1)[1]
        raise LRKitError(f"storage {url!r} is not a valid SQLite URL: after sqlite:// comes a third slash and the "
                         f"file, e.g. sqlite:///{rest} for the file {rest!r} (four slashes for an absolute path, "
                         f"sqlite:////abs/{rest}); sqlite:// alone is an in-memory database")
    return url


def default_study_name(task: str, target: float, budget: int, optimizer: str) -> str:
    """The name a recommendation gets without ``--study``: the same command continues the same study."""
    return f"{task}-{optimizer}-acc{target:g}-b{budget}"


def open_storage(url: str | None = None, *, heartbeat_interval: int = HEARTBEAT_INTERVAL,
                 grace_period: int = GRACE_PERIOD, max_retry: int = 2,
                 must_exist: bool = False, read_only: bool = False):  # noqa: ANN201 (optuna type)
    """An Optuna RDBStorage with heartbeats and retry of trials whose worker died.

    Args:
        url: an SQLAlchemy URL or an SQLite file path (``None``: ``sqlite:///lrkit.db``).
        heartbeat_interval: seconds between a running trial's heartbeats, >= 1.
        grace_period: seconds without a heartbeat after which a running trial is failed and retried,
            > heartbeat_interval.
        max_retry: how many times one trial is retried, >= 0.
        must_exist: refuse an SQLite file that does not exist yet, rather than create an empty
            database (for commands that only read or join a study).
        read_only: the caller only reads (``results``, ``report``): a read-only database file is fine.

    Raises:
        LRKitError: a malformed URL (:func:`storage_url`); at an SQLite URL, a file that is not an SQLite
            database (left as it is; an empty 0-byte file counts as a new database, as SQLite treats it), a
            read-only database file (unless ``read_only``), or a folder where SQLite cannot create its
            side files; a database that cannot be reached.
    """
    import optuna

    try:  # renamed in Optuna 4.9; the old name goes in 6.0
        from optuna.storages import RetryHeartbeatStaleTrialCallback as Retry
    except ImportError:  # pragma: no cover (older Optuna)
        from optuna.storages import RetryFailedTrialCallback as Retry

    require(heartbeat_interval >= 1, "heartbeat_interval >= 1", heartbeat_interval=heartbeat_interval)
    require(grace_period > heartbeat_interval, "grace_period > heartbeat_interval",
            grace_period=grace_period, heartbeat_interval=heartbeat_interval)
    require(max_retry >= 0, "max_retry >= 0", max_retry=max_retry)
    url = storage_url(url)
    if url.startswith("sqlite"):
        _check_sqlite_file(url, must_exist=must_exist, read_only=read_only)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # several processes may share one SQLite file; wait for the lock instead of failing at once
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs["pool_pre_ping"] = True
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats, fail_stale_trials and TPE's `group` are marked experimental; lrkit relies on them knowingly
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        storage = _rdb(_storage_class(), url, engine_kwargs, heartbeat_interval, grace_period, Retry(max_retry=max_retry))
        if url.startswith("sqlite"):
            _sqlite_wal(storage.engine)
        return storage
    except ImportError as err:
        raise LRKitError(f"cannot open storage {_redact(url)}: {err}. For PostgreSQL install psycopg "
                         "(pip install 'psycopg[binary]') and use a postgresql+psycopg:// URL.") from err
    except Exception as err:  # SQLAlchemy's errors are many; the user needs the URL and the cause
        if type(err).__module__.startswith("sqlalchemy"):
            raise LRKitError(f"cannot open storage {_redact(url)}: {err.__class__.__name__}: "
                             f"{str(err).splitlines()[0]}") from err
        raise


def sqlite_file(url: str) -> str | None:
    """The file of an SQLite URL (``sqlite:///a.db`` -> ``a.db``, ``sqlite:////abs/a.db`` -> ``/abs/a.db``);
    None for an in-memory database or another backend."""
    if not url.startswith("sqlite:"):
        return None
    path = url.split("://", 1)[1][1:].split("?", 1)[0] if "://" in url else ""
    return None if path in ("", ":memory:") else path


def _is_sqlite(path: str) -> bool:
    """Whether SQLite reads the (non-empty) file as a database. Asked through SQLite, not by reading the
    header with ``open()``: closing any other descriptor of a file drops the POSIX locks this process's
    SQLite connections hold on it, and a database written meanwhile by another process is corrupted."""
    import sqlite3

    if os.path.getsize(path) < 512:  # smaller than SQLite's smallest page: what SQLite would overwrite
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)) as conn:
            conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as err:
        return "not a database" not in str(err)  # other errors (locks, a read-only folder) are named later
    return True


def _writable(path: str) -> bool:
    return os.access(path, os.W_OK)


def _check_sqlite_file(url: str, *, must_exist: bool, read_only: bool) -> None:
    """What an SQLite URL's file must be before SQLite opens it (SQLite's own errors name none of this)."""
    path = sqlite_file(url)
    if path is None or (must_exist and not os.path.exists(path)):
        if must_exist:
            _check_sqlite_database(url)  # in memory, or missing: says so
        return
    file, folder = Path(path), Path(path).resolve().parent
    where = f"{path!r} (storage {_redact(url)})"
    if file.is_dir():
        raise LRKitError(f"{where} is a folder, not a database file; pass a file, e.g. --storage sqlite:///{path}/lrkit.db")
    if file.exists() and file.stat().st_size > 0 and not _is_sqlite(path):
        raise LRKitError(f"{where} is not an SQLite database ({file.stat().st_size} bytes that SQLite does not read "
                         "as one); it was left as it is. Pass the right --storage, or a new file")
    if not folder.is_dir():
        raise LRKitError(f"the folder of {where} does not exist; create it first (lrkit creates only the file)")
    if file.exists() and not read_only and not _writable(path):
        raise LRKitError(f"the database file {where} is read-only: this command writes trials into it. Make it "
                         "writable (chmod u+w), or copy it; `lrkit results` and `lrkit report` can read it as it is")
    side_files = all(_writable(f"{path}{suffix}") for suffix in ("-wal", "-shm")
                     if os.path.exists(f"{path}{suffix}")) and os.path.exists(f"{path}-shm")
    if not _writable(str(folder)) and not (read_only and side_files):
        raise LRKitError(f"the folder {str(folder)!r} of {where} is not writable: SQLite creates its journal files "
                         f"({file.name}-wal, {file.name}-shm) beside the database, "
                         + ("to read it too" if read_only else "and this command writes")
                         + ". Make the folder writable, or copy the database into a writable one")
    if must_exist:
        _check_sqlite_database(url)


def _check_sqlite_database(url: str) -> None:
    """A command that only reads or joins a study must find an lrkit database at an SQLite URL: not an
    in-memory one, not a missing file, and not a file without Optuna's tables (opening it would write the
    schema into someone else's file)."""
    import sqlite3

    path = sqlite_file(url)
    if path is None:
        raise LRKitError(f"storage {_redact(url)} is an in-memory SQLite database, which holds no study; pass the "
                         "file the study was started in, e.g. --storage sqlite:///lrkit.db")
    if not os.path.exists(path):
        raise LRKitError(f"no lrkit database at {path!r} (storage {_redact(url)}); start a study there with "
                         "`lrkit recommend` first, or pass the right --storage")
    try:
        read_only = f"{Path(path).resolve().as_uri()}?mode=ro"  # a URI: a '?' or '#' in the name is escaped
        with contextlib.closing(sqlite3.connect(read_only, uri=True)) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as err:
        raise LRKitError(f"{path!r} (storage {_redact(url)}) is not an SQLite database ({err}); "
                         "pass the right --storage") from None
    if not {"studies", "alembic_version"} <= tables:
        raise LRKitError(f"{path!r} (storage {_redact(url)}) is not an lrkit database: it holds no Optuna "
                         "tables, and it was left as it is. Pass the right --storage")


def _storage_class() -> type:
    """RDBStorage whose stale-trial check also fails a RUNNING trial that never wrote a heartbeat.

    Optuna skips a RUNNING trial without a heartbeat row, yet a trial gets its first heartbeat only after
    ``study.ask()`` (sampling) returns: a process killed in between leaves a trial that nothing ever fails,
    and every later run waits for it forever. Such a trial is stale when it started longer than the grace
    period ago (its ``datetime_start``, written by the claiming process's clock), or when this process has
    itself seen it without a heartbeat for longer than the grace period (so a worker whose clock is off
    still fails it, one grace period later). It is then failed and retried like any stale trial.
    """
    import time
    from datetime import datetime, timedelta, timezone

    from optuna.storages import RDBStorage
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from optuna.trial import TrialState

    if "LRKitStorage" in globals():
        return globals()["LRKitStorage"]
    # Optuna >= 5 stores naive UTC in the datetime_start column (earlier versions: naive local time)
    _START = getattr(models.TrialModel, "_datetime_start_utc", None) or models.TrialModel.datetime_start
    utc = hasattr(models.TrialModel, "_datetime_start_utc")

    def _now_as_stored() -> datetime:
        return datetime.now(timezone.utc).replace(tzinfo=None) if utc else datetime.now()

    class LRKitStorage(RDBStorage):
        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            stale = super()._get_stale_trial_ids(study_id)
            grace = self.grace_period if self.grace_period is not None else 2 * (self.heartbeat_interval or 0)
            with _create_scoped_session(self.scoped_session, True) as session:
                silent = (session.query(models.TrialModel.trial_id, _START)
                          .outerjoin(models.TrialHeartbeatModel)
                          .filter(models.TrialModel.study_id == study_id,
                                  models.TrialModel.state == TrialState.RUNNING,
                                  models.TrialHeartbeatModel.trial_heartbeat_id.is_(None)).all())
            seen = self.__dict__.setdefault("_lrkit_silent_since", {})
            now, clock = _now_as_stored(), time.monotonic()
            for trial_id, started in silent:
                watched = clock - seen.setdefault(trial_id, clock)
                if (started is not None and now - started > timedelta(seconds=grace)) or watched > grace:
                    stale.append(trial_id)
            return stale

    LRKitStorage.__module__, LRKitStorage.__qualname__ = __name__, "LRKitStorage"  # picklable by name
    globals()["LRKitStorage"] = LRKitStorage
    return LRKitStorage


def _rdb(cls: Any, url: str, engine_kwargs: dict[str, Any], heartbeat_interval: int, grace_period: int,
         retry: Any, attempts: int = 5) -> Any:
    """``RDBStorage(...)``, again when another process was creating the same new database's tables at the
    same moment (creating the tables and writing the schema version are not atomic: the loser sees "table
    ... already exists" or a UNIQUE failure on ``alembic_version``); the retry finds the tables there."""
    import time

    for attempt in range(attempts):
        try:
            return cls(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                       grace_period=grace_period, heartbeat_stale_trial_callback=retry)
        except Exception as err:  # noqa: BLE001 (re-raised unless it is the race)
            racing = "already exists" in str(err) or "alembic_version" in str(err)  # the tables, the version row
            if not racing or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _sqlite_wal(engine: Any) -> None:
    """WAL journal, synchronous=NORMAL, and every transaction ``BEGIN IMMEDIATE``.

    A trial reports every evaluation, and SQLite's default full sync per commit (~10 ms) would dominate
    short trials; WAL also lets readers (``lrkit results``) run beside a writing worker. A crash can lose
    at most the last commits, never corrupt the file. ``BEGIN IMMEDIATE`` takes the write lock when a
    transaction starts: SQLite has no ``SELECT ... FOR UPDATE``, so without it two workers can both read
    a queued trial as WAITING and both run it (seen: two workers started on one queue ran its first
    trial twice). With it, Optuna's read-check-write of a trial's state is atomic, as on PostgreSQL.
    """
    from sqlalchemy import event

    def on_connect(conn: Any, _record: Any) -> None:
        conn.isolation_level = None  # pysqlite must not open transactions itself; "begin" below does
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    engine.dispose()  # connections opened before the listeners must not stay in the pool


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def state_dir(storage: str | None, study: str, given: str | os.PathLike[str] | None = None) -> Path:
    """The folder of a study's fork states (a composition's, :mod:`lrkit.lrbench.composition.forks`, or a search's
    decay forks'): beside an SQLite file ``path/x.db.states/STUDY``, else ``given/STUDY`` or ``./lrkit-states/STUDY``."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", study)
    if given:
        return Path(given) / safe
    path = sqlite_file(storage_url(storage))
    if path is not None:
        return Path(path + ".states") / safe
    return Path("lrkit-states") / safe


def create_study(storage, name: str, config: StudyConfig, *, sampler=None, pruner=None):  # noqa: ANN001, ANN201
    """Create the study (or load it when it exists with the same config) and store ``config`` in it.

    Workers must not race to create one study (parallel first-time schema creation crashes on
    PostgreSQL): the recommender or the user creates it once, then workers ``load_study`` it.
    """
    import optuna

    require(bool(name), "study name is not empty", name=name)
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize", sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    stored = study.user_attrs.get(ATTR_CONFIG)
    if stored is None:
        study.set_user_attr(ATTR_CONFIG, config.to_dict())
        return study, config
    old = StudyConfig.from_dict(stored)
    if old.identity() != config.identity():
        diff = {k: (v, config.identity()[k]) for k, v in old.identity().items() if config.identity()[k] != v}
        raise LRKitError(f"study {name!r} already exists for another search: stored vs requested "
                         f"{format_diff(diff)}. Use another --study name or the same arguments.")
    return study, old


def format_diff(diff: dict[str, tuple[Any, Any]]) -> str:
    return "(" + ", ".join(f"{k}: {a!r} vs {b!r}" for k, (a, b) in diff.items()) + ")"


def update_config(study, config: StudyConfig) -> None:  # noqa: ANN001
    """Store a config that changed in non-identity fields (trial count, found LR range)."""
    study.set_user_attr(ATTR_CONFIG, config.to_dict())


def study_names(storage) -> list[str]:  # noqa: ANN001
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def other_studies(storage, exclude: str, *, newest_first: bool = False):  # noqa: ANN001, ANN201
    """``(name, study, config)`` of every study lrkit made in ``storage`` but ``exclude``, oldest first (or
    newest first); a study lrkit did not make is skipped."""
    names = study_names(storage)
    for name in reversed(names) if newest_first else names:
        if name == exclude:
            continue
        try:
            study, config = load_study(storage, name)
        except LRKitError:  # not an lrkit study
            continue
        yield name, study, config


def load_study(storage, name: str | None, *, sampler=None, pruner=None):  # noqa: ANN001, ANN201
    """The study ``name`` and its ``StudyConfig``; with ``name=None`` the only study there is.

    Raises:
        LRKitError: the study does not exist (the message lists those that do), or ``name`` is None
            and there is not exactly one study.
    """
    import optuna

    names = study_names(storage)
    if name is None:
        if not names:
            raise LRKitError("this storage holds no study yet; start one with `lrkit recommend` first")
        if len(names) > 1:
            raise LRKitError(f"this storage holds {len(names)} studies ({', '.join(names)}); name one with --study")
        name = names[0]
    if name not in names:
        raise LRKitError(f"study {name!r} does not exist in this storage; studies there: {', '.join(names) or 'none'}. "
                         "Start it with `lrkit recommend` first.")
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    stored = study.user_attrs.get(ATTR_CONFIG)
    if stored is None:
        raise LRKitError(f"study {name!r} was not made by lrkit (it has no {ATTR_CONFIG!r} attribute)")
    return study, StudyConfig.from_dict(stored)
