"""The workdir of a run: its lock, and its ``config.json`` as a contract.

One process at a time writes a workdir: :class:`WorkdirLock` holds ``lock.json`` (host,
pid). A rerun on the same workdir resumes the run that ``config.json`` describes, so the
config of the rerun is compared with it first (:func:`check_config_contract`): only the
run length and the cadences may change freely.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time

logger = logging.getLogger(__name__)

#: Fields a resumed run may change: the length of the run, cadences, evaluation, hosts.
RESUMABLE_FIELDS = (
    "num_steps",
    "eval_every",
    "checkpoint_every",
    "log_every",
    "eval.",
    "distributed.",
)
#: Fields whose change alters the shapes of the saved state: never resumable.
SHAPE_FIELDS = ("model.", "optimizer.name", "optimizer.schedule", "optimizer.grad_clip_norm")


class ConfigMismatchError(ValueError):
    """A rerun's config differs from the workdir's ``config.json`` where it matters."""


class WorkdirLockedError(RuntimeError):
    """Another live process holds the workdir's lock."""


def flatten(tree, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists as tuples, so they compare to tuples)."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = tuple(value) if isinstance(value, list) else value
    return flat


def _matches(field: str, patterns) -> bool:
    return any(field == p or (p.endswith(".") and field.startswith(p)) for p in patterns)


def config_changes(old: dict, new: dict) -> dict[str, tuple]:
    """The fields whose values differ: ``{field: (old, new)}`` (``"<absent>"`` if missing)."""
    a, b = flatten(old), flatten(json.loads(json.dumps(new)))
    missing = "<absent>"
    return {
        k: (a.get(k, missing), b.get(k, missing))
        for k in sorted(set(a) | set(b))
        if a.get(k, missing) != b.get(k, missing)
    }


def check_config_contract(workdir: str, config, *, allow_change: bool = False) -> dict:
    """Compares ``config`` with the workdir's ``config.json`` before anything is restored.

    Args:
      workdir: the run's directory.
      config: the rerun's config.
      allow_change: accept changes outside :data:`RESUMABLE_FIELDS` (the change is then
        recorded in ``config_history.jsonl``); changes to :data:`SHAPE_FIELDS` are
        refused even so, because the saved state cannot be restored into the new shapes.

    Returns:
      The changed fields ``{field: (old, new)}`` (empty for a fresh workdir).

    Raises:
      ConfigMismatchError: listing the differing fields.
    """
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        old = json.load(f)
    changes = config_changes(old, json.loads(config.to_json_best_effort()))
    blocking = {k: v for k, v in changes.items() if not _matches(k, RESUMABLE_FIELDS)}
    shape = {k: v for k, v in blocking.items() if _matches(k, SHAPE_FIELDS)}
    listing = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in (shape or blocking).items())
    if shape:
        raise ConfigMismatchError(
            f"{workdir} holds a run whose saved state has other shapes; the config differs "
            f"in {listing}. Use a new workdir."
        )
    if blocking and not allow_change:
        raise ConfigMismatchError(
            f"{workdir} holds a run with another config; it differs in {listing}. Use a new "
            "workdir, or pass --allow_config_change to continue the run under the new config "
            "(recorded in config_history.jsonl)."
        )
    return changes


def record_config_change(workdir: str, changes: dict, *, step: int) -> None:
    """Appends ``{time, step, changes}`` to the workdir's ``config_history.jsonl``."""
    row = {"time": time.time(), "step": step, "changes": {k: list(v) for k, v in changes.items()}}
    with open(os.path.join(workdir, "config_history.jsonl"), "a") as f:
        f.write(json.dumps(row, default=str) + "\n")


def check_writable(*directories: str) -> None:
    """Raises ``PermissionError`` at once when a directory cannot be written.

    Tries to create a file (``os.access`` does not see read-only mounts, nor root).
    """
    for directory in directories:
        probe = os.path.join(directory, f".write-test-{os.getpid()}")
        try:
            with open(probe, "w"):
                pass
            os.remove(probe)
        except OSError as e:
            raise PermissionError(
                f"the workdir {os.path.abspath(directory)} is not writable ({e.strerror}); "
                "a run needs to write its checkpoints and metrics there"
            ) from e


def _alive(pid: int) -> bool:
    if pid <= 0:  # os.kill(0 or -1, ...) would address whole process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkdirLock:
    """``lock.json`` in the workdir, holding the host and pid of the process that runs it.

    A lock whose process is gone (same host) is stale and taken over with a warning; a
    live one, or one from another host, is an error naming its holder.
    """

    def __init__(self, workdir: str, *, enabled: bool = True):
        self.path = os.path.join(workdir, "lock.json")
        self.enabled = enabled
        self.held = False

    def __enter__(self):
        if not self.enabled:
            return self
        me = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = self._holder()
                if holder is None:
                    continue
                if holder.get("host") == me["host"] and not _alive(int(holder.get("pid", -1))):
                    logger.warning(
                        "taking over the stale lock of pid %s (no longer running) in %s",
                        holder.get("pid"),
                        self.path,
                    )
                    os.remove(self.path)
                    continue
                raise WorkdirLockedError(
                    f"the workdir is in use by pid {holder.get('pid')} on host "
                    f"{holder.get('host')!r} ({self.path}); if that process is gone, delete "
                    "the lock file"
                ) from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise WorkdirLockedError(f"could not take the lock {self.path}")

    def _holder(self) -> dict | None:
        try:
            with open(self.path) as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"host": socket.gethostname(), "pid": -1}  # unreadable: treat as stale

    def __exit__(self, *exc):
        if self.held:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
            self.held = False
        return False
