"""Runs a grid of experiments and summarises them.

``python -m experiments.sweep --config=experiments/configs/iwae_k5.py
--sweep='objective.num_samples=1,5,50' --sweep='seed=0,1,2' --workdir=runs/k
[--config.num_steps=1000 ...] [--parallel=2]``

Every job runs ``experiments.main`` with the ``--config.*`` overrides given here and its
grid point's. Writes ``summary.md``, ``summary.csv`` and ``summary.png``; exits non-zero
when a job failed (the summary lists it with its error).
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from vbounds.lab.config import unknown_override
from vbounds.lab.objectives import make_objective
from vbounds.lab.sweep import parse_sweep, run_sweep, summarize_sweep

# The config is parsed here too, so a bad override fails before any job starts.
config_flags.DEFINE_config_file("config", None, "Base experiment config file.", lock_config=True)
flags.DEFINE_multi_string("sweep", [], "'a.b=v1,v2' (repeat for a Cartesian product).")
flags.DEFINE_string("workdir", None, "Sweep directory: one subdirectory per job.")
flags.DEFINE_integer("parallel", 1, "Jobs run at once as local processes.")
flags.DEFINE_bool("summarize_only", False, "Only rebuild the summary from finished jobs.")
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    points = parse_sweep(FLAGS.sweep)
    overrides = [a for a in sys.argv[1:] if a.startswith("--config.")]
    codes = None
    if not FLAGS.summarize_only:
        config_path = FLAGS["config"].config_filename
        codes = run_sweep(
            config_path, FLAGS.workdir, points, parallel=FLAGS.parallel, overrides=overrides
        )
    objective = make_objective(FLAGS.config.objective)
    summarize_sweep(FLAGS.workdir, points, codes=codes, sweep_report=objective.sweep_report)
    with open(f"{FLAGS.workdir}/summary.md") as f:
        print(f.read())
    failed = [i for i, c in enumerate(codes or []) if c]
    if failed:
        print(f"{len(failed)} of {len(points)} jobs failed; see summary.md and their log.txt")
        sys.exit(1)


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
