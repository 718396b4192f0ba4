"""Runs a grid of experiments and summarises them.

``python -m experiments.sweep --config=experiments/configs/iwae_k5.py
--sweep='objective.num_samples=1,5,50' --sweep='seed=0,1,2' --workdir=runs/k``

Jobs run the config's ``entry_point`` (default ``experiments.main``, summarised from the
test metrics); an entry point with its own ``summarize_sweep(workdir, points)`` (e.g.
``experiments.mi_gaussian``, the MI staircase) writes the summary itself.
"""

import importlib

from absl import app, flags

from vbounds.training.sweep import (
    DEFAULT_ENTRY_POINT,
    entry_point,
    parse_sweep,
    run_sweep,
    summarize_sweep,
)

flags.DEFINE_string("config", None, "Base experiment config file.")
flags.DEFINE_multi_string("sweep", [], "'a.b=v1,v2' (repeat for a Cartesian product).")
flags.DEFINE_string("workdir", None, "Sweep directory: one subdirectory per job.")
flags.DEFINE_integer("parallel", 1, "Jobs run at once as local processes.")
flags.DEFINE_bool("summarize_only", False, "Only rebuild the summary from finished jobs.")
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    points = parse_sweep(FLAGS.sweep)
    entry = entry_point(FLAGS.config)
    if not FLAGS.summarize_only:
        codes = run_sweep(FLAGS.config, FLAGS.workdir, points, parallel=FLAGS.parallel, entry=entry)
        failed = [i for i, c in enumerate(codes) if c]
        if failed:
            print(f"jobs {failed} failed; see log.txt in their directories")
    if entry == DEFAULT_ENTRY_POINT:
        summarize_sweep(FLAGS.workdir, points)
    else:
        importlib.import_module(entry).summarize_sweep(FLAGS.workdir, points)
    with open(f"{FLAGS.workdir}/summary.md") as f:
        print(f.read())


if __name__ == "__main__":
    app.run(main)
