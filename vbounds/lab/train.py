"""Training in the shape of flax's examples: ``create_state``, ``train_step``,
``eval_step`` and a short ``train_and_evaluate`` loop.

The state is a pytree ``{params, rest, opt_state, step, rng}`` of arrays: ``params`` the
model's ``nnx.Param`` leaves, ``rest`` its other variables (running statistics an
objective may update, such as MINE's moving average), both as pure dicts; the model is
``nnx.merge(graphdef, params, rest)`` inside each jitted step.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm  # the text bar: tqdm.auto warns in kernels without ipywidgets

from vbounds.lab import checkpoints as ckpt
from vbounds.lab.config import make_optimizer, validate
from vbounds.lab.distributed import (
    global_batch,
    initialize_distributed,
    make_mesh,
    replicated,
    sharded_on_data,
)
from vbounds.lab.metrics import MetricsLog, read_metrics
from vbounds.lab.objectives import mean_summary
from vbounds.lab.report import plot_learning_curves
from vbounds.lab.workdir import (
    WorkdirLock,
    check_config_contract,
    check_writable,
    record_config_change,
)

logger = logging.getLogger(__name__)


class TrainingDivergedError(FloatingPointError):
    """The training loss (or the parameters) became non-finite."""


def create_state(model: nnx.Module, tx: optax.GradientTransformation, *, seed: int):
    """The model's graph and its fresh training state.

    Args:
      model: the initialised model.
      tx: the optimiser.
      seed: the run's seed (the training key is derived from it).

    Returns:
      ``(graphdef, state)``: ``state = {params, rest, opt_state, step, rng}`` with the
      PRNG key as raw key data (checkpointable).
    """
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params = nnx.to_pure_dict(params)
    state = {
        "params": params,
        "rest": nnx.to_pure_dict(rest),
        "opt_state": tx.init(params),
        "step": jnp.zeros((), jnp.int32),
        "rng": jax.random.key_data(jax.random.split(jax.random.key(seed))[0]),
    }
    return graphdef, state


def train_step(graphdef, tx, loss_fn: Callable, transform: Callable | None, state, batch):
    """One optimiser step on ``loss_fn``: returns ``(new_state, metrics)``.

    The step's key is ``fold_in(rng, step)`` (split into the data transform's key and the
    loss's key), so a resumed run draws what the uninterrupted run would have.

    Args:
      graphdef: the model's graph definition.
      tx: the optimiser.
      loss_fn: ``(model, batch, key) -> (loss, metrics)``.
      transform: ``(key, batch) -> batch`` applied to the batch first, or ``None``.
      state: the training state.
      batch: the global batch.
    """
    step_key = jax.random.fold_in(jax.random.wrap_key_data(state["rng"]), state["step"])
    data_key, loss_key = jax.random.split(step_key)
    if transform is not None:
        batch = transform(data_key, batch)

    def objective(params):
        model = nnx.merge(graphdef, params, state["rest"])
        loss, metrics = loss_fn(model, batch, loss_key)
        rest = nnx.to_pure_dict(nnx.split(model, nnx.Param, ...)[2])
        return loss, (metrics, rest)

    (loss, (metrics, rest)), grads = jax.value_and_grad(objective, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    new_state = {
        "params": optax.apply_updates(state["params"], updates),
        "rest": rest,
        "opt_state": opt_state,
        "step": state["step"] + 1,
        "rng": state["rng"],
    }
    return new_state, {"loss": loss, **metrics}


def eval_step(graphdef, evaluate: Callable, state, batch, key):
    """The objective's test outputs for one batch (``evaluate(model, batch, key)``)."""
    return evaluate(nnx.merge(graphdef, state["params"], state["rest"]), batch, key)


def _loss_metrics(loss_fn: Callable) -> Callable:
    """The default evaluation: the loss and its metrics on a test batch."""

    def evaluate(model, batch, key):
        loss, metrics = loss_fn(model, batch, key)
        return {"loss": loss, **metrics}

    return evaluate


def evaluate_split(eval_fn, state, test: dict, *, batch_size: int, sharding, key, per_example):
    """Runs ``eval_fn`` over a test split in global batches.

    Per-example outputs are computed over padded batches and trimmed to the split;
    batch-mean outputs (the default evaluation) are averaged over the full batches only
    (the remainder that does not fill a batch is left out, so no example counts twice).

    Returns:
      The concatenated per-example outputs, or the mean batch outputs.
    """
    n = len(test["x"])
    if per_example:
        num_batches = math.ceil(n / batch_size)
        rows = np.arange(num_batches * batch_size) % n
    else:
        num_batches = n // batch_size
        rows = np.arange(num_batches * batch_size)
    outputs = []
    for i in range(num_batches):
        index = rows[i * batch_size : (i + 1) * batch_size]
        batch = global_batch({k: v[index] for k, v in test.items()}, sharding)
        out = eval_fn(state, batch, jax.random.fold_in(key, i))
        outputs.append(jax.tree.map(np.asarray, out))
    if per_example:
        return jax.tree.map(lambda *xs: np.concatenate(xs)[:n], *outputs)
    return jax.tree.map(lambda *xs: np.mean(np.stack(xs), axis=0), *outputs)


@jax.jit
def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _check_finite(rows: list[dict], first_step: int) -> None:
    for offset, row in enumerate(rows):
        bad = [k for k, v in row.items() if not np.all(np.isfinite(v))]
        if bad:
            raise TrainingDivergedError(
                f"training diverged: {', '.join(bad)} became non-finite at step "
                f"{first_step + offset} ({bad[0]}={row[bad[0]]}); no checkpoint was written "
                "from that point. Lower optimizer.learning_rate or set optimizer.grad_clip_norm."
            )


def train_and_evaluate(config, workdir: str, *, allow_config_change: bool = False) -> dict:
    """Trains ``config.model`` on ``config.objective`` and evaluates it on the test split.

    Data-parallel over a 1-D mesh of all devices: the global batch is sharded on
    ``"data"``, the state is replicated, one jitted step does the update. Writes
    ``config.json``, ``metrics.jsonl``, ``checkpoints/`` and ``report.png`` into
    ``workdir``; a rerun resumes from the newest intact checkpoint and reproduces the
    uninterrupted run (step keys are ``fold_in(rng, step)``, the data order a function
    of ``(seed, step)``).

    Args:
      config: an experiment config with the fields of
        :data:`vbounds.lab.config.REQUIRED_FIELDS` (and optionally ``log_every``, ``eval``).
      workdir: the run's directory.
      allow_config_change: continue a workdir whose ``config.json`` differs in more than
        the run length and cadences (the change is recorded in ``config_history.jsonl``).

    Returns:
      The final test metrics (``test_*``) and ``step``.
    """
    initialize_distributed(config.distributed)
    plan = validate(config, num_devices=jax.device_count(), num_processes=jax.process_count())
    is_chief = jax.process_index() == 0
    os.makedirs(workdir, exist_ok=True)
    check_writable(workdir)
    with WorkdirLock(workdir, enabled=is_chief):
        changes = check_config_contract(workdir, config, allow_change=allow_config_change)
        return _run(config, workdir, plan, changes, is_chief)


def build(config, plan):
    """The dataset (loaded and validated), the initialised model and the optimiser of a
    validated config (:func:`vbounds.lab.config.validate` gives ``plan``)."""
    dataset_factory, data_section = plan.dataset
    dataset = dataset_factory(data_section)
    if hasattr(dataset, "validate"):
        dataset = dataset.validate(f"data[{data_section.name!r}]")
    example = dataset.train_batch(seed=config.seed, step=0, batch_size=config.batch_size)
    model_factory, model_section = plan.model
    model = model_factory(model_section, rngs=nnx.Rngs(config.seed), example_batch=example)
    return dataset, model, make_optimizer(config.optimizer, num_steps=config.num_steps)


def _run(config, workdir, plan, changes, is_chief) -> dict:
    dataset, model, tx = build(config, plan)
    objective = plan.objective
    test = dataset.test_split()
    per_example = objective.evaluate is not None
    if not per_example and len(test["x"]) < plan.eval_batch_size:
        raise ValueError(
            f"config.eval.batch_size={plan.eval_batch_size} exceeds the test split "
            f"({len(test['x'])} examples)"
        )

    mesh = make_mesh()
    logger.info(
        "devices: %d (%s) over %d process(es); mesh %s; global batch %d, %d per device",
        jax.device_count(),
        jax.devices()[0].platform,
        jax.process_count(),
        dict(mesh.shape),
        config.batch_size,
        config.batch_size // jax.device_count(),
    )
    graphdef, state = create_state(model, tx, seed=config.seed)
    state = jax.device_put(state, replicated(mesh))
    eval_key = jax.random.split(jax.random.key(config.seed))[1]

    checkpoints, restored = ckpt.restore_latest(workdir, state)
    start = 0
    if restored is not None:
        state, start = restored, int(restored["step"])
        logger.info("resumed from the checkpoint at step %d", start)
    if is_chief:
        if changes and restored is not None:
            record_config_change(workdir, changes, step=start)
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json_best_effort(indent=2))
    log = MetricsLog(os.path.join(workdir, "metrics.jsonl"), resume_step=start, enabled=is_chief)

    transform = getattr(dataset, "train_transform", None)
    step_fn = jax.jit(
        functools.partial(train_step, graphdef, tx, objective.loss, transform),
        donate_argnums=0,
        out_shardings=(replicated(mesh), replicated(mesh)),
    )
    evaluate = objective.evaluate or _loss_metrics(objective.loss)
    eval_fn = jax.jit(
        functools.partial(eval_step, graphdef, evaluate), out_shardings=replicated(mesh)
    )
    summarize = objective.summarize or mean_summary

    def run_eval(step: int) -> dict:
        outputs = evaluate_split(
            eval_fn,
            state,
            test,
            batch_size=plan.eval_batch_size,
            sharding=sharded_on_data(mesh),
            key=eval_key,
            per_example=per_example,
        )
        summary = (
            summarize(outputs)
            if per_example
            else {f"test_{k}": float(v) for k, v in outputs.items()}
        )
        return {"step": step, **summary, "wall_time": time.time() - t0}

    t0 = time.time()
    pending, results = [], {}
    # Per-step metrics since the last logged row (restored with the checkpoint, so a
    # resumed run's next row averages the same steps as an uninterrupted one).
    unlogged = log.window(start, log_every=plan.log_every) if is_chief else []
    bar = tqdm(
        range(start, config.num_steps),
        initial=start,
        total=config.num_steps,
        disable=not is_chief,
        desc=f"{config.model.name}/{config.objective.name}",
    )
    for step in bar:
        host = dataset.train_batch(seed=config.seed, step=step, batch_size=config.batch_size)
        state, metrics = step_fn(state, global_batch(host, sharded_on_data(mesh)))
        pending.append(metrics)
        done = step + 1
        last = done == config.num_steps
        log_now = done % plan.log_every == 0 or last
        eval_now = done % config.eval_every == 0 or last
        save_now = done % config.checkpoint_every == 0 or last
        if log_now or eval_now or save_now:
            unlogged += [jax.tree.map(float, jax.device_get(m)) for m in pending]
            pending = []
            _check_finite(unlogged, done - len(unlogged) + 1)
        if log_now:
            means = {k: float(np.mean([m[k] for m in unlogged])) for k in unlogged[0]}
            unlogged = []
            log.write({"step": done, **means, "wall_time": time.time() - t0})
            bar.set_postfix(loss=f"{means['loss']:.3g}")
        if eval_now:
            results = run_eval(done)
            log.write(results)
        if save_now:
            if not bool(_all_finite(state["params"])):
                raise TrainingDivergedError(
                    f"training diverged: the parameters are non-finite at step {done}; no "
                    "checkpoint was written"
                )
            log.save_window(done, unlogged)
            ckpt.save(checkpoints, done, state)
    bar.close()
    checkpoints.wait_until_finished()
    checkpoints.close()
    if not results:  # the checkpoint was already at num_steps: report, don't log twice
        results = run_eval(start)
        rows = read_metrics(log.path)
        if not any(r["step"] == start and any(k.startswith("test_") for k in r) for r in rows):
            log.write(results)
    if is_chief:
        report = objective.report or plot_learning_curves
        report(
            read_metrics(log.path),
            os.path.join(workdir, "report.png"),
            model=nnx.merge(graphdef, state["params"], state["rest"]),
            key=jax.random.fold_in(eval_key, 2**20),
            title=f"{config.model.name} / {config.objective.name}",
        )
    return results
