"""`bot run`'s demo participant: their first messages go out at once, at any hour."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli.run import _daytime_zone
from bot.nudges import load_study_schedule
from bot.schedule import as_zone, defer

FLOWS = str(Path(__file__).resolve().parents[1] / "flows")


@pytest.mark.parametrize("hour", range(24))
@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles", "Asia/Tokyo"])
def test_the_demo_zone_is_outside_quiet_hours_at_any_hour(zone: str, hour: int) -> None:
    now = datetime(2026, 11, 24, hour, 40, tzinfo=UTC)
    chosen = _daytime_zone(zone, FLOWS, now)
    quiet = load_study_schedule(FLOWS).quiet
    assert defer(now, as_zone(chosen), quiet) == now
    if defer(now, as_zone(zone), quiet) == now:
        assert chosen == zone  # the machine's own zone whenever it is daytime there
    else:
        assert 11 <= now.astimezone(as_zone(chosen)).hour <= 13
