#!/usr/bin/env bash
# The full MI staircase of Poole et al. (2019) on one GPU: 8 estimators x 2 critics
# (separable, concat) x 2 variants (y, y^3), 32 runs of experiments/configs/mi_gaussian.py
# (4,000 steps per level, batch 64), as one sweep with --parallel jobs sharing the GPU.
#
#   experiments/gpu/mi_gaussian.sh WORKDIR
#
# Writes the sweep into WORKDIR (a rerun resumes its jobs from their checkpoints) and copies
# summary.md, summary.csv, report.png, staircase.md and staircase.csv into
# experiments/results/mi_gaussian/. Some jobs are expected to diverge (the exponential
# estimators on y^3 with the separable critic, as in the earlier runs): summary.md lists
# them with their error, and the script still copies the results of the others.
# Expected on one H200 (not yet measured through this path): 32 x 20,000 steps, each run
# bound by the per-step host loop (~1 ms) plus ~20 s of start-up and compilation, so about
# 5 minutes at PARALLEL=8 and under 10; the former single-scan script took 85 s. A run cut
# short resumes from its last level's checkpoint when the same command is run again.
# Environment: PYTHON (default .venv/bin/python), PARALLEL (default 8 jobs at once);
# CONFIG and RESULTS replace the config and the results directory, e.g. for a dry run on
# a CPU: CONFIG=experiments/configs/mi_gaussian.py:smoke RESULTS=<scratch dir>.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 WORKDIR" >&2
  exit 2
fi
WORKDIR=$(realpath -m "$1")
PYTHON=${PYTHON:-.venv/bin/python}
PARALLEL=${PARALLEL:-8}
CONFIG=${CONFIG:-experiments/configs/mi_gaussian.py}
RESULTS=$(realpath -m "${RESULTS:-$(dirname "$0")/../results/mi_gaussian}")
cd "$(dirname "$0")/../.."

# Several processes share the GPU: each allocates what it needs, not 75% of the memory.
export XLA_PYTHON_CLIENT_PREALLOCATE=false

start=$(date +%s)
status=0
"$PYTHON" -m experiments.sweep --config="$CONFIG" \
  --sweep='objective.estimator=infonce,nwj,tuba,interpolated,js,dv,mine,smile' \
  --sweep='model.critic=separable,concat' \
  --sweep='data.cubic=False,True' \
  --workdir="$WORKDIR" --parallel="$PARALLEL" || status=$?
elapsed=$(($(date +%s) - start))

mkdir -p "$RESULTS"
for name in summary.md summary.csv report.png staircase.md staircase.csv; do
  if [[ -f "$WORKDIR/$name" ]]; then
    cp "$WORKDIR/$name" "$RESULTS/"
  else
    echo "missing $WORKDIR/$name" >&2
  fi
done
echo "sweep: ${elapsed} s of wall time, exit status ${status} (non-zero when a job failed;" \
  "see $RESULTS/summary.md); results in $RESULTS"
[[ -f "$RESULTS/summary.md" ]]
