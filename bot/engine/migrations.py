"""Upgrades of older flow *file formats* (the `spec:` key) to the current one.

Each entry migrates spec N to N+1 in place; `migrate` applies them in order, so a study's
old files keep loading after the format changes. Spec 1 is the first format: no entries yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .flow import SPEC_VERSION
from .problems import Problem

MIGRATIONS: dict[int, Callable[[Any], Any]] = {}


def migrate(data: Any, path: str, problems: list[Problem]) -> Any:
    spec = data.get("spec", SPEC_VERSION)
    line = data.key_lines.get("spec", 1)
    if not isinstance(spec, int) or isinstance(spec, bool) or spec < 1:
        problems.append(Problem(path, line, None, f"`spec: {spec}` must be a whole number",
                                f"use spec: {SPEC_VERSION}", code="bad_spec"))
        return None
    if spec > SPEC_VERSION:
        message = f"this file needs flow format {spec}; this bot reads up to {SPEC_VERSION}"
        problems.append(Problem(path, line, None, message, "upgrade the bot", code="bad_spec"))
        return None
    while spec < SPEC_VERSION:
        data = MIGRATIONS[spec](data)
        spec += 1
    return data
