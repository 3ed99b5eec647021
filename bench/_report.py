"""How the benchmarks print their figures: one JSON object (`--json`), or one `name: value` line
per figure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def print_report(figures: Mapping[str, Any], *, as_json: bool, width: int = 24) -> None:
    """Print `figures` as one JSON line (`as_json`) or as `name: value` lines, the names
    right-aligned in `width` characters."""
    if as_json:
        print(json.dumps(dict(figures)))
        return
    for key, value in figures.items():
        print(f"{key:>{width}}: {value}")
