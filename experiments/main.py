"""Runs one experiment: ``python -m experiments.main --config=<file> --workdir=<dir>``."""

import logging

from absl import app, flags
from ml_collections import config_flags

from vbounds.training import format_table, train_and_evaluate

config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Output directory (resumes from its checkpoints).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    # Our own INFO lines (devices, mesh, resume) without orbax's per-save chatter.
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("vbounds").setLevel(logging.INFO)
    results = train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)
    print(f"\nFinal test bounds (nats per example, step {results['step']}):")
    print(format_table(results))


if __name__ == "__main__":
    app.run(main)
