#!/usr/bin/env bash
# The GPU benchmark suite as one command on a lent GPU machine (no network there).
#
# The machine's image has jax (CUDA), numpyro, torch, optax, chex; distrax, its
# tensorflow-probability and ml_collections travel as wheels in .whl/ (see
# benchmarks/README.md, "GPU run"). Writes benchmarks/results/gpu-<device>.json and the
# log, and copies both to $OUT when that is set.
#
#     bash benchmarks/gpu_run.sh            # the whole --gpu suite
#     bash benchmarks/gpu_run.sh --only iwae_step
set -u
out="${OUT:-benchmarks/results}"
if ls .whl/*.whl >/dev/null 2>&1; then
    site="$(mktemp -d)"  # a scratch install target for the wheels, outside the checkout
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" .whl/*.whl || exit 1
    export PYTHONPATH="$site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
# JAX would take 75% of the GPU's memory up front; leave room for torch in the same process.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.5
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv || true
python3 -c "import jax, distrax, numpyro, torch, vbounds; print('jax', jax.__version__, jax.devices(), 'torch', torch.__version__, torch.cuda.is_available())" || exit 1
set -o pipefail
python3 -m benchmarks.run --gpu "$@" 2>&1 | tee "$out/gpu_bench.log"
status=$?
if [ "$out" != "benchmarks/results" ]; then
    cp benchmarks/results/gpu-*.json "$out/" 2>/dev/null
fi
exit $status
