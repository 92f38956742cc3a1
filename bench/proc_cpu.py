"""CPU used by processes, read from Linux's /proc: what the benchmarks attribute to whom."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far; 0 once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """The direct children of `pid` (a gunicorn master's workers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                out.append(int(entry.name))
    return out


def postgres_backends(url: str | None) -> dict[int, float]:
    """CPU so far of each PostgreSQL backend connected to `url`'s database (pid → seconds),
    this query's own excepted; {} for any other database."""
    if url is None or not url.startswith("postgresql"):
        return {}
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            pids = conn.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")).scalars().all()
    finally:
        engine.dispose()
    return {int(pid): cpu_seconds(int(pid)) for pid in pids}


def postgres_cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    # Backends that ended in between are missed; the apps keep theirs open throughout.
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
