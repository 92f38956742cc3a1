"""Flows by id and version: the files in `flows_dir` for new sessions, the database for old ones.

A session finishes on the flow version it started on, even after the coordinator publishes
an amendment. So every (flow_id, version) that starts a session is first stored, source and
all, in `flow_version`; resuming looks the version up there when the file has moved on.

The version number names the content: if a file changes without a new `version`, the stored
content keeps winning (answers are stamped with the version, so one version must mean one
text) and an error is logged until the coordinator raises the version.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from . import logs
from .engine.flow import Flow
from .engine.loader import flow_files, load_flow_text
from .engine.problems import FlowError
from .store.models import FlowVersion
from .store.types import utcnow

_log = logs.get_logger("flows")


class UnknownFlow(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class LoadedFlow:
    flow: Flow
    source: str
    sha256: str


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _parse(source: str, path: str) -> Flow:
    flow, problems = load_flow_text(source, path)
    errors = [p for p in problems if p.level == "error"]
    if flow is None or errors:
        raise FlowError(errors or problems)
    return flow


class FlowRegistry:
    """Thread-safe; one per app. Files are re-read when their mtime or size changes."""

    def __init__(self, flows_dir: str | Path, check_interval: float = 2.0) -> None:
        self.flows_dir = Path(flows_dir)
        self.check_interval = check_interval
        self._lock = threading.RLock()
        self._stamps: dict[Path, tuple[int, int]] = {}
        self._by_path: dict[Path, LoadedFlow] = {}
        self._current: dict[str, LoadedFlow] = {}
        self._versions: dict[tuple[str, int], Flow] = {}
        self._stored: dict[tuple[str, int], str] = {}  # sha256 of the stored source
        self._checked_at = float("-inf")

    # ---- files ----------------------------------------------------------------------------

    def refresh(self, force: bool = True) -> None:
        """Re-read changed flow files (at most every `check_interval` s unless forced)."""
        now = time.monotonic()
        if not force and now - self._checked_at < self.check_interval:
            return
        with self._lock:
            self._checked_at = now
            paths = list(flow_files([self.flows_dir])) if self.flows_dir.is_dir() else []
            stamps: dict[Path, tuple[int, int]] = {}
            for path in paths:
                try:
                    st = path.stat()
                except OSError:
                    continue
                stamps[path] = (st.st_mtime_ns, st.st_size)
            if stamps == self._stamps:
                return
            by_path: dict[Path, LoadedFlow] = {}
            for path, stamp in stamps.items():
                old = self._by_path.get(path)
                if old is not None and self._stamps.get(path) == stamp:
                    by_path[path] = old
                    continue
                loaded = self._load_file(path)
                if loaded is not None:
                    by_path[path] = loaded
            self._stamps, self._by_path = stamps, by_path
            self._current = {lf.flow.id: lf for lf in by_path.values()}

    def _load_file(self, path: Path) -> LoadedFlow | None:
        try:
            source = path.read_text(encoding="utf-8")
            flow = _parse(source, str(path))
        except (OSError, UnicodeDecodeError, FlowError) as exc:
            # A broken file must not take the webhook down: sessions on stored versions go on.
            logs.event(_log, "flow_file_invalid", level=40, file=path.name,
                       problems=len(getattr(exc, "problems", [])) or 1)
            return None
        return LoadedFlow(flow, source, _sha(source))

    def current_ids(self) -> list[str]:
        self.refresh(force=False)
        return sorted(self._current)

    # ---- database ---------------------------------------------------------------------------

    def _insert_ignore(self, db: Session, lf: LoadedFlow) -> None:
        values = {"flow_id": lf.flow.id, "version": lf.flow.version, "source": lf.source,
                  "sha256": lf.sha256, "created_at": utcnow()}
        dialect = db.get_bind().dialect.name
        table = FlowVersion.__table__  # type: ignore[attr-defined]
        stmt: sa.Insert
        if dialect == "postgresql":
            stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing(
                index_elements=["flow_id", "version"])
        elif dialect == "sqlite":
            stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing(
                index_elements=["flow_id", "version"])
        else:  # pragma: no cover - only the two databases above are supported
            raise RuntimeError(f"unsupported database {dialect}")
        db.execute(stmt)

    def _ensure_stored(self, db: Session, lf: LoadedFlow) -> Flow:
        """Store this version if new; return the flow the version number stands for."""
        key = (lf.flow.id, lf.flow.version)
        stored_sha = self._stored.get(key)
        if stored_sha is None:
            self._insert_ignore(db, lf)
            stored_sha = db.exec(select(FlowVersion.sha256).where(
                FlowVersion.flow_id == key[0], FlowVersion.version == key[1])).one()
            self._stored[key] = stored_sha
        if stored_sha == lf.sha256:
            self._versions.setdefault(key, lf.flow)
            return lf.flow
        logs.event(_log, "flow_changed_without_new_version", level=40, flow=key[0],
                   version=key[1])
        return self.version(db, *key)

    def sync(self, db: Session) -> int:
        """Store every current flow version; returns how many flows were checked."""
        self.refresh()
        for lf in list(self._current.values()):
            self._ensure_stored(db, lf)
        return len(self._current)

    # ---- lookups ----------------------------------------------------------------------------

    def current(self, db: Session, flow_id: str) -> Flow:
        """The flow to *start*: the file's version, stored first so the session can finish."""
        self.refresh(force=False)
        lf = self._current.get(flow_id)
        if lf is None:
            self.refresh()
            lf = self._current.get(flow_id)
        if lf is None:
            raise UnknownFlow(f"no valid flow `{flow_id}` in {self.flows_dir}")
        return self._ensure_stored(db, lf)

    def version(self, db: Session, flow_id: str, version: int) -> Flow:
        """The flow a session started on, from memory, the files or the database."""
        key = (flow_id, version)
        flow = self._versions.get(key)
        if flow is not None:
            return flow
        with self._lock:
            row = db.exec(select(FlowVersion).where(FlowVersion.flow_id == flow_id,
                                                    FlowVersion.version == version)).first()
            if row is None:
                raise UnknownFlow(f"flow `{flow_id}` version {version} was never stored")
            lf = self._current.get(flow_id)
            if lf is not None and lf.flow.version == version and lf.sha256 == row.sha256:
                flow = lf.flow
            else:
                flow = _parse(row.source, f"{flow_id}@v{version}")
            self._stored[key] = row.sha256
            self._versions[key] = flow
            return flow


_default: FlowRegistry | None = None


def set_default(registry: FlowRegistry) -> None:
    """The registry used where no app is at hand (workers, the CLI): the last app's."""
    global _default
    _default = registry


def default() -> FlowRegistry:
    global _default
    if _default is None:
        from .config import Settings

        _default = FlowRegistry(Settings.from_env().flows_dir)
    return _default
