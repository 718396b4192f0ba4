"""The run's metrics log: one JSON object per logged step in ``metrics.jsonl``."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping

logger = logging.getLogger(__name__)


def read_metrics(path: str) -> list[dict]:
    """Reads a ``metrics.jsonl`` file (an empty list when it does not exist).

    A torn last line (a run killed while writing it) is skipped with a warning; a bad
    line elsewhere is an error naming the line.
    """
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [line for line in f.read().split("\n") if line.strip()]
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if number == len(lines):
                logger.warning("%s: skipped a torn last line (%d characters)", path, len(line))
                break
            raise ValueError(f"{path}, line {number}, is not JSON: {e}") from e
    return rows


def _json_value(value):
    """Floats as JSON numbers, non-finite ones as strings (``"nan"``), never invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsLog:
    """Appends one JSON object per logged step to ``metrics.jsonl``.

    On resume the rows after the restored step are dropped (and a torn last line is
    repaired), so a resumed run's log is the uninterrupted run's log.
    """

    def __init__(self, path: str, *, resume_step: int, enabled: bool = True):
        """Opens the log.

        Args:
          path: the ``metrics.jsonl`` path.
          resume_step: rows with ``step`` above it are discarded (0 for a fresh run).
          enabled: false on processes other than the first (nothing is written).
        """
        self.path = path
        self.enabled = enabled
        if not enabled:
            return
        kept = [row for row in read_metrics(path) if row["step"] <= resume_step]
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in kept)
        os.replace(tmp, path)

    def write(self, row: Mapping) -> None:
        """Appends ``row`` (which must hold ``step``)."""
        if self.enabled:
            line = json.dumps({k: _json_value(v) for k, v in row.items()})
            with open(self.path, "a") as f:
                f.write(line + "\n")
