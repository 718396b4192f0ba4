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

    @property
    def _window_path(self) -> str:
        return os.path.join(os.path.dirname(self.path), "metrics_window.json")

    def save_window(self, step: int, rows: list[dict], *, keep: int = 4) -> None:
        """Records the per-step metrics not yet averaged into a row, as of ``step``.

        Called just before the checkpoint of ``step`` is saved: a run resumed from that
        checkpoint then averages its next row over the same steps as an uninterrupted
        run. The windows of the ``keep`` newest steps are kept, so a fallback to an
        older checkpoint (the newest one damaged) finds its window too.
        """
        if not self.enabled:
            return
        windows = self._windows()
        windows[str(step)] = [{k: _json_value(v) for k, v in r.items()} for r in rows]
        newest = sorted(windows, key=int)[-keep:]
        tmp = self._window_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({k: windows[k] for k in newest}, f)
        os.replace(tmp, self._window_path)

    def window(self, step: int, *, log_every: int) -> list[dict]:
        """The per-step metrics recorded by :meth:`save_window` for ``step``.

        Empty when ``step`` is on a logging boundary. When it is not and no window was
        recorded (a log from an older version), the next row averages fewer steps and a
        warning says so.
        """
        if step % log_every == 0:
            return []
        rows = self._windows().get(str(step))
        if rows is None:
            logger.warning(
                "no record of the metrics between the last logged step and the checkpoint "
                "at step %d: the next row averages only the steps after it",
                step,
            )
            return []
        return [{k: float(v) for k, v in r.items()} for r in rows]

    def _windows(self) -> dict:
        try:
            with open(self._window_path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError:
            logger.warning("%s is damaged; ignoring it", self._window_path)
            return {}

    def write(self, row: Mapping) -> None:
        """Appends ``row`` (which must hold ``step``)."""
        if self.enabled:
            line = json.dumps({k: _json_value(v) for k, v in row.items()})
            with open(self.path, "a") as f:
                f.write(line + "\n")
