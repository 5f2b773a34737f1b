"""The run store: sweeps, trials and an event log in SQLite (WAL) or PostgreSQL via SQLAlchemy.

A trial is claimed by an atomic compare-and-set on its `token`: a worker reads a claimable
row, then `UPDATE ... SET token = <new> WHERE id = ? AND token = <seen>`; exactly one of
several racing workers (processes or machines) sees one updated row. A claim is a lease:
the worker's heartbeat pushes `lease_until` forward, and a row whose lease has expired (its
worker was killed) is claimable again. Every write of a result is conditioned on the token,
so a worker that lost its lease cannot record a duplicate. Optuna studies live in the same
database (its own tables; ours are prefixed `lab_`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    cast,
    create_engine,
    event,
    extract,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError, IntegrityError, ProgrammingError

from mlplab.errors import SpecError

STORE_FILE = "lab.sqlite"
CLAIMABLE = ("pending", "running")
FINISHED = ("done", "failed")

metadata = MetaData()

sweeps = Table(
    "lab_sweeps", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("spec", JSON, nullable=False),
    Column("info", JSON, nullable=False),  # task directions, metric names, planning environment
    Column("created_at", Float, nullable=False),
)

trials = Table(
    "lab_trials", metadata,
    Column("id", Integer, primary_key=True),
    Column("sweep_id", Integer, ForeignKey("lab_sweeps.id"), nullable=False),
    Column("key", String(400), nullable=False),
    Column("kind", String(10), nullable=False),  # "search" | "run"
    Column("family", String(200), nullable=False),
    Column("family_values", JSON, nullable=False),
    Column("budget", Float),
    Column("seed", Integer, nullable=False),
    Column("search_index", Integer),
    Column("spec", JSON),  # the trial's run spec (search trials: set when first claimed)
    Column("optuna_trial", Integer),
    Column("status", String(10), nullable=False, default="pending"),
    Column("token", String(40), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("worker", String(200)),
    Column("host", String(200)),
    Column("pid", Integer),
    Column("lease_until", Float),
    Column("heartbeat_at", Float),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("params", Integer),
    Column("trainable_params", Integer),
    Column("flops", Integer),
    Column("metrics", JSON),
    Column("curves", JSON),
    Column("timings", JSON),
    Column("wall_seconds", Float),
    Column("run_dir", Text),
    Column("error", Text),
    UniqueConstraint("sweep_id", "key"),
)

events = Table(
    "lab_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("trial_id", Integer, ForeignKey("lab_trials.id"), nullable=False),
    Column("kind", String(20), nullable=False),  # claimed | reclaimed | done | failed | released
    Column("worker", String(200), nullable=False),
    Column("at", Float, nullable=False),
    Column("detail", Text),
)


def normalize_url(url_or_path: str | Path) -> str:
    """A SQLAlchemy URL: `postgresql://` uses psycopg 3; a path means a SQLite file."""
    text = str(url_or_path)
    for prefix in ("postgresql://", "postgres://"):
        if text.startswith(prefix):
            return "postgresql+psycopg://" + text[len(prefix):]
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).resolve()}"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get("lab_read"):
            conn.exec_driver_sql("BEGIN")  # a snapshot read (WAL): never blocks the writers
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # write lock up front: no upgrade races

    return engine


class Store:
    """One database holding any number of sweeps. `Store("runs/x/lab.sqlite")` or a URL."""

    def __init__(self, url_or_path: str | Path) -> None:
        self.url = normalize_url(url_or_path)
        if self.url.startswith("sqlite"):
            path = Path(self.url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            self.engine = _sqlite_engine(self.url)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True)
        for attempt in range(3):
            try:
                metadata.create_all(self.engine)
                break
            except (IntegrityError, ProgrammingError):
                # another machine created the tables at the same moment: look again
                if attempt == 2:
                    raise
                time.sleep(0.5)
            except DatabaseError as err:  # unreachable server, a file that is not SQLite, ...
                reason = str(err.orig).strip().splitlines()[0]
                if self.url.startswith("sqlite") and "not a database" in reason:
                    raise SpecError(f"{path} is not an SQLite database (it is corrupt or another "
                                    "file); move it away or choose another --out") from None
                raise SpecError(f"--store: cannot open {self.display_url}: {reason}") from None

    @property
    def display_url(self) -> str:
        """The URL without a password."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads only (on SQLite a plain, non-locking transaction)."""
        with self.engine.connect() as conn:
            yield conn.execution_options(lab_read=True)

    def close(self) -> None:
        self.engine.dispose()

    def now(self, conn: Connection | None = None) -> float:
        """Seconds since the epoch for leases: the database's clock on PostgreSQL (one clock
        for every machine, so a skewed machine cannot expire a live lease), this machine's
        clock on SQLite (one machine)."""
        if self.engine.dialect.name != "postgresql":
            return time.time()
        query = select(cast(extract("epoch", func.now()), Float))
        if conn is not None:
            return float(conn.scalar(query))
        with self.read() as c:
            return float(c.scalar(query))

    # -- sweeps ---------------------------------------------------------------------------

    def sweep_names(self) -> list[str]:
        with self.read() as conn:
            return list(conn.scalars(select(sweeps.c.name).order_by(sweeps.c.id)))

    def get_sweep(self, name: str) -> dict[str, Any] | None:
        with self.read() as conn:
            row = conn.execute(select(sweeps).where(sweeps.c.name == name)).mappings().first()
        return dict(row) if row else None

    def ensure_sweep(self, name: str, spec: dict[str, Any], info: dict[str, Any], *,
                     normalise: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> int:
        """The sweep's id; creates it, or checks that the stored spec is the same one.

        `normalise` maps a stored spec to today's form (re-parsed: fields added to the spec
        language since the sweep was stored get their defaults), so a newer mlplab keeps
        resuming a store an older one wrote."""
        for _ in range(3):
            row = self.get_sweep(name)
            if row is not None:
                stored = _normalised(row["spec"], normalise)
                if _canonical(stored) == _canonical(spec):
                    return int(row["id"])
                if _canonical(_fixed_part(stored)) != _canonical(_fixed_part(spec)):
                    raise SpecError(f"name: the store {self.display_url} already holds a sweep "
                                    f"{name!r} with a different spec (only seeds, budgets and "
                                    "axis values may grow); use another name or --out")
                with self.engine.begin() as conn:  # a grown grid: keep every finished trial
                    conn.execute(update(sweeps).where(sweeps.c.id == row["id"]).values(spec=spec))
                return int(row["id"])
            try:
                with self.engine.begin() as conn:
                    return int(conn.execute(insert(sweeps).values(
                        name=name, spec=spec, info=info, created_at=time.time())).inserted_primary_key[0])
            except IntegrityError:
                continue
        raise SpecError(f"name: cannot register sweep {name!r} in {self.display_url}")

    def add_trials(self, sweep_id: int, rows: list[dict[str, Any]]) -> int:
        """Insert planned trials that are not stored yet (by `key`); returns how many were new."""
        with self.read() as conn:
            have = set(conn.scalars(select(trials.c.key).where(trials.c.sweep_id == sweep_id)))
        new = [{"status": "pending", "token": _token(), "attempts": 0, **r, "sweep_id": sweep_id}
               for r in rows if r["key"] not in have]
        added = 0
        for row in new:
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(trials).values(**row))
                added += 1
            except IntegrityError:  # another machine planned the same trial first
                pass
        return added

    # -- claims ---------------------------------------------------------------------------

    def trials(self, sweep_id: int, *columns: str) -> list[dict[str, Any]]:
        cols = [trials.c[c] for c in columns] if columns else [trials]
        with self.read() as conn:
            rows = conn.execute(select(*cols).where(trials.c.sweep_id == sweep_id)
                                .order_by(trials.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def try_claim(self, row: dict[str, Any], worker: str, lease_seconds: float) -> str | None:
        """Atomically take `row` (as read, with its token); the new token, or None if lost.

        A running row is only taken when its lease ran out by `now()` (the database's clock
        on PostgreSQL), or when its process on this host is gone and has not beaten since.
        """
        token = _token()
        where = [trials.c.id == row["id"], trials.c.token == row["token"],
                 trials.c.status.in_(CLAIMABLE)]
        with self.engine.begin() as conn:
            now = self.now(conn)
            if row["status"] == "running":
                where.append(trials.c.lease_until == row["lease_until"] if _process_gone(row)
                             else trials.c.lease_until < now)
            result = conn.execute(
                update(trials).where(*where)
                .values(status="running", token=token, worker=worker,
                        host=socket.gethostname(), pid=os.getpid(), lease_until=now + lease_seconds,
                        heartbeat_at=now, started_at=now, attempts=trials.c.attempts + 1,
                        error=None))
            if result.rowcount != 1:
                return None
            kind = "reclaimed" if row["status"] == "running" else "claimed"
            detail = f"previous worker {row['worker']}" if kind == "reclaimed" else None
            conn.execute(insert(events).values(trial_id=row["id"], kind=kind, worker=worker,
                                               at=now, detail=detail))
        return token

    def heartbeat(self, trial_id: int, token: str, lease_seconds: float) -> bool:
        """Extend the lease; False when the claim was lost (another worker took the trial)."""
        with self.engine.begin() as conn:
            now = self.now(conn)
            result = conn.execute(update(trials).where(trials.c.id == trial_id,
                                                       trials.c.token == token)
                                  .values(heartbeat_at=now, lease_until=now + lease_seconds))
        return result.rowcount == 1

    def update_claimed(self, trial_id: int, token: str, **values: Any) -> bool:
        """Write fields of a trial we hold (e.g. its search spec); False if the claim was lost."""
        with self.engine.begin() as conn:
            result = conn.execute(update(trials).where(trials.c.id == trial_id,
                                                       trials.c.token == token).values(**values))
        return result.rowcount == 1

    def finish(self, trial_id: int, token: str, worker: str, *, status: str, detail: str | None = None,
               **values: Any) -> bool:
        """Record a result (`status` done/failed) and log the event, only if we hold the claim."""
        with self.engine.begin() as conn:
            now = self.now(conn)
            result = conn.execute(update(trials).where(trials.c.id == trial_id,
                                                       trials.c.token == token)
                                  .values(status=status, token=_token(), finished_at=now,
                                          lease_until=None, **values))
            if result.rowcount != 1:
                return False
            conn.execute(insert(events).values(trial_id=trial_id, kind=status, worker=worker,
                                               at=now, detail=detail))
        return True

    def release(self, trial_id: int, token: str, worker: str) -> None:
        """Give a claimed trial back (interrupted): pending again, claimable at once."""
        with self.engine.begin() as conn:
            result = conn.execute(update(trials).where(trials.c.id == trial_id,
                                                       trials.c.token == token)
                                  .values(status="pending", token=_token(), lease_until=None))
            if result.rowcount == 1:
                conn.execute(insert(events).values(trial_id=trial_id, kind="released",
                                                   worker=worker, at=self.now(conn)))

    def log_event(self, trial_id: int, kind: str, worker: str, detail: str | None = None) -> None:
        """Append to the event log without touching the trial (e.g. `lost`: a claim taken over)."""
        with self.engine.begin() as conn:
            conn.execute(insert(events).values(trial_id=trial_id, kind=kind, worker=worker,
                                               at=self.now(conn), detail=detail))

    def holder(self, trial_id: int) -> str | None:
        """The worker that holds (or last held) a trial's claim."""
        with self.read() as conn:
            return conn.scalar(select(trials.c.worker).where(trials.c.id == trial_id))

    def requeue_failed(self, sweep_id: int) -> int:
        with self.engine.begin() as conn:
            return conn.execute(update(trials).where(trials.c.sweep_id == sweep_id,
                                                     trials.c.status == "failed")
                                .values(status="pending", token=_token())).rowcount

    def status_counts(self, sweep_id: int) -> dict[str, int]:
        with self.read() as conn:
            rows = conn.execute(select(trials.c.status, func.count()).where(
                trials.c.sweep_id == sweep_id).group_by(trials.c.status)).all()
        return {status: int(n) for status, n in rows}

    def events(self, sweep_id: int) -> list[dict[str, Any]]:
        with self.read() as conn:
            rows = conn.execute(select(events).join(trials, events.c.trial_id == trials.c.id)
                                .where(trials.c.sweep_id == sweep_id)
                                .order_by(events.c.id)).mappings().all()
        return [dict(r) for r in rows]


def _token() -> str:
    return uuid.uuid4().hex


def _fixed_part(spec: dict[str, Any]) -> dict[str, Any]:
    """What must not change between runs of one sweep: all but seeds, budgets, axis values."""
    fixed = json.loads(json.dumps(spec))
    fixed.pop("seeds", None)
    fixed["axes"] = sorted(fixed.get("axes") or {})
    if not fixed.get("family"):  # stored before named families existed, or none named
        fixed.pop("family", None)
    if fixed.get("budget"):
        fixed["budget"].pop("params", None)
        fixed["budget"].pop("flops", None)
        fixed["budget"]["kind"] = "params" if spec["budget"].get("params") else "flops"
    return fixed


def _normalised(stored: dict[str, Any],
                normalise: Callable[[dict[str, Any]], dict[str, Any]] | None) -> dict[str, Any]:
    """The stored spec in today's form; as stored when it no longer parses (then it differs)."""
    if normalise is None:
        return stored
    try:
        return normalise(stored)
    except (SpecError, ValueError):  # pydantic's ValidationError is a ValueError
        return stored


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def is_expired(row: dict[str, Any], now: float | None = None) -> bool:
    """A running claim whose lease ran out, or whose worker process on this host is gone."""
    if row["status"] != "running":
        return False
    now = time.time() if now is None else now
    if row["lease_until"] is not None and row["lease_until"] < now:
        return True
    return _process_gone(row)


def _process_gone(row: dict[str, Any]) -> bool:
    """The row's worker process ran on this host (another process) and no longer exists."""
    if row["host"] != socket.gethostname() or not row["pid"] or row["pid"] == os.getpid():
        return False
    try:
        os.kill(row["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
