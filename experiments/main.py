"""Runs one experiment: ``python -m experiments.main --config=<file> --workdir=<dir>``.

Rerun the same command to resume from the latest checkpoint. Errors the user can act on
(a bad config, a changed config, a diverged run, a locked or read-only workdir) print
one readable message and exit with status 1.
"""

import logging
import sys

from absl import app, flags
from ml_collections import config_flags

from vbounds.lab import format_table, train_and_evaluate
from vbounds.lab.config import unknown_override
from vbounds.lab.train import TrainingDivergedError
from vbounds.lab.workdir import WorkdirLockedError

config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Output directory (resumes from its checkpoints).")
flags.DEFINE_bool(
    "allow_config_change",
    False,
    "Continue a workdir whose config.json differs (recorded in config_history.jsonl).",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    # Our own INFO lines (devices, mesh, resume) without orbax's per-save chatter.
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("vbounds").setLevel(logging.INFO)
    try:
        results = train_and_evaluate(
            flags.FLAGS.config,
            flags.FLAGS.workdir,
            allow_config_change=flags.FLAGS.allow_config_change,
        )
    except (
        ValueError,
        TypeError,
        FileNotFoundError,
        PermissionError,
        TrainingDivergedError,
        WorkdirLockedError,
    ) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"\nFinal test metrics (step {results['step']}):")
    print(format_table(results))


def parse_flags(argv):
    """absl's parsing, with an unknown ``--config.*`` key named instead of a bare
    ``AttributeError``."""
    try:
        return flags.FLAGS(argv)
    except (AttributeError, KeyError) as e:
        print(f"error: {unknown_override(argv) or e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
