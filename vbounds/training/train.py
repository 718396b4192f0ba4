"""``train_and_evaluate``: data-parallel training of a model on an objective, with resume."""

import logging
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from vbounds.data import Dataset, batch_indices, binarize, load_dataset
from vbounds.evaluation import default_chunk_size
from vbounds.models import MODELS, build_model
from vbounds.objectives import check_objective_config, get_objective
from vbounds.training.evaluate import evaluate_batch, summarize
from vbounds.training.report import MetricsLog, plot_report, read_metrics

logger = logging.getLogger(__name__)

REQUIRED_FIELDS = (
    "seed",
    "num_steps",
    "batch_size",
    "eval_every",
    "checkpoint_every",
    "model",
    "objective",
    "data",
    "optimizer",
    "distributed",
)
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adabelief", "lamb")


def check_config(config, *, num_devices: int, num_processes: int = 1) -> None:
    """Raises ``ValueError`` for config values that cannot work, before any compilation.

    Args:
      config: the experiment config.
      num_devices: devices in the mesh (the global batch is split over them).
      num_processes: JAX processes (each feeds an equal share of the batch).
    """
    missing = [k for k in REQUIRED_FIELDS if k not in config]
    if missing:
        raise ValueError(f"config lacks the top-level fields {missing}")
    for name in ("num_steps", "batch_size", "eval_every", "checkpoint_every"):
        value = config[name]
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"config.{name} must be a positive int, got {value!r}")
    if config.model.get("name") not in MODELS:
        raise ValueError(
            f"unknown model.name {config.model.get('name')!r}; valid names: {', '.join(MODELS)}"
        )
    check_objective_config(config.objective)
    if config.optimizer.get("name") not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer.name {config.optimizer.get('name')!r}; "
            f"valid: {', '.join(OPTIMIZERS)}"
        )
    eval_batch = config.get("eval", {}).get("batch_size", config.batch_size)
    eval_chunk = config.get("eval", {}).get("chunk_size")
    if eval_chunk is not None and (
        isinstance(eval_chunk, bool) or not isinstance(eval_chunk, int) or eval_chunk < 1
    ):
        raise ValueError(
            f"config.eval.chunk_size must be a positive int or None (the backend's "
            f"measured default), got {eval_chunk!r}"
        )
    for name, size in (("batch_size", config.batch_size), ("eval.batch_size", eval_batch)):
        if size % num_devices or size % num_processes:
            raise ValueError(
                f"config.{name}={size} must be divisible by the number of devices "
                f"({num_devices}) and processes ({num_processes}): the batch is split evenly"
            )


def make_optimizer(config, *, num_steps: int) -> optax.GradientTransformation:
    """Builds the optax optimiser of a config's ``optimizer`` section.

    ``name`` is an optax optimiser, ``learning_rate`` its rate; ``schedule`` may be
    ``"constant"`` (default) or ``"cosine"`` (decay to 0 over ``num_steps``);
    ``grad_clip_norm`` clips the global gradient norm; the other fields are passed to
    the optax constructor (e.g. ``b1``, ``b2``, ``eps``, ``weight_decay``).
    """
    kwargs = dict(config)
    name = kwargs.pop("name")
    learning_rate = kwargs.pop("learning_rate")
    schedule = kwargs.pop("schedule", "constant")
    clip = kwargs.pop("grad_clip_norm", None)
    if schedule == "cosine":
        learning_rate = optax.cosine_decay_schedule(learning_rate, num_steps)
    elif schedule != "constant":
        raise ValueError(f"optimizer.schedule must be 'constant' or 'cosine', got {schedule!r}")
    tx = getattr(optax, name)(learning_rate=learning_rate, **kwargs)
    return optax.chain(optax.clip_by_global_norm(clip), tx) if clip else tx


def initialize_distributed(config) -> None:
    """Calls ``jax.distributed.initialize`` when the ``distributed`` section asks for it.

    An empty ``coordinator_address`` means a single process; ``"auto"`` lets JAX
    detect the cluster (SLURM, Kubernetes, Cloud TPU); otherwise ``host:port`` with
    ``num_processes`` and ``process_id``. Several processes on CPU need
    ``jax.config.update("jax_cpu_collectives_implementation", "gloo")`` first.
    """
    address = config.get("coordinator_address") or ""
    if not address or jax.distributed.is_initialized():
        return
    if address == "auto":
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(
            coordinator_address=address,
            num_processes=config.num_processes,
            process_id=config.process_id,
        )


def make_mesh() -> jax.sharding.Mesh:
    """A 1-D ``("data",)`` mesh over every device of every process."""
    # Auto axis types: the per-example RNG keys split inside the step are not sharded
    # like the batch, which Explicit axes reject under vmap (DESIGN.md, sharp edges).
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))


def init_state(config, dataset: Dataset):
    """The model's graph and the fresh training state ``{params, opt_state, step, rng}``.

    Args:
      config: the experiment config.
      dataset: the loaded data (for the input size, likelihood and classes).

    Returns:
      ``(graphdef, state, tx)``: the nnx graph definition (``nnx.merge(graphdef,
      state["params"])`` rebuilds the model), the state with params as a pure dict and
      the PRNG key as raw key data, and the optax optimiser.
    """
    model = build_model(
        config.model,
        data_dim=dataset.data_dim,
        likelihood=dataset.likelihood,
        num_classes=dataset.num_classes,
        seed=config.seed,
    )
    graphdef, params = nnx.split(model)
    params = nnx.to_pure_dict(params)
    tx = make_optimizer(config.optimizer, num_steps=config.num_steps)
    train_key = jax.random.split(jax.random.key(config.seed))[0]
    state = {
        "params": params,
        "opt_state": tx.init(params),
        "step": jnp.zeros((), jnp.int32),
        "rng": jax.random.key_data(train_key),
    }
    return graphdef, state, tx


def _global_batch(dataset_x, dataset_y, indices, sharding) -> dict:
    """This process's rows of a global batch, assembled into sharded global arrays."""
    share = len(indices) // jax.process_count()
    local = indices[jax.process_index() * share : (jax.process_index() + 1) * share]
    batch = {"x": dataset_x[local]}
    if dataset_y is not None:
        batch["y"] = dataset_y[local]
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def _evaluate(eval_fn, state, dataset: Dataset, *, batch_size, sharding, key) -> dict:
    """Runs ``eval_fn`` over the test set in padded batches and summarises it."""
    n = len(dataset.x_test)
    num_batches = math.ceil(n / batch_size)
    padded = np.arange(num_batches * batch_size) % n
    outputs = []
    for i in range(num_batches):
        rows = padded[i * batch_size : (i + 1) * batch_size]
        batch = _global_batch(dataset.x_test, dataset.y_test, rows, sharding)
        outputs.append(jax.tree.map(np.asarray, eval_fn(state["params"], batch, key)))
    metrics, means = jax.tree.map(lambda *xs: np.concatenate(xs)[:n], *outputs)
    return summarize(metrics, means)


def train_and_evaluate(config, workdir: str) -> dict:
    """Trains ``config.model`` on ``config.objective`` and evaluates it on the test split.

    Data-parallel over a 1-D mesh of all devices: the global batch is sharded on
    ``"data"``, parameters and optimiser state are replicated, and one jitted step
    does the update. Writes ``config.json``, ``metrics.jsonl``, ``checkpoints/`` and
    ``report.png`` into ``workdir``; a rerun on the same workdir resumes from the
    latest checkpoint and reproduces the uninterrupted run (step keys are
    ``fold_in(rng, step)`` and the data order is a function of ``(seed, step)``).

    Args:
      config: an experiment config (``ml_collections.ConfigDict``) with the fields of
        DESIGN.md: ``seed``, ``num_steps``, ``batch_size``, ``eval_every``,
        ``checkpoint_every``, ``model``, ``objective``, ``data``, ``optimizer``,
        ``distributed``; optional ``log_every`` and ``eval`` (``num_samples``,
        ``chunk_size``, ``batch_size``).

    Returns:
      The final test metrics: ``test_log_likelihood``, ``test_bound``, ``test_elbo``,
      ``test_active_units`` (nats, per example), and ``step``.
    """
    initialize_distributed(config.distributed)
    check_config(config, num_devices=jax.device_count(), num_processes=jax.process_count())
    dataset = load_dataset(config.data)
    if config.model.name == "cvae" and dataset.y_train is None:
        raise ValueError(
            f"model 'cvae' needs labelled data; data.name={config.data.name!r} has none"
        )
    eval_config = config.get("eval", {})
    eval_samples = eval_config.get("num_samples", 5000)
    # None: the chunk measured fastest on this backend (benchmarks/README.md, loglik).
    eval_chunk = eval_config.get("chunk_size") or default_chunk_size()
    eval_batch = eval_config.get("batch_size", config.batch_size)
    log_every = config.get("log_every", 50)
    is_chief = jax.process_index() == 0

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
    replicated = NamedSharding(mesh, P())
    batch_sharding = NamedSharding(mesh, P("data"))

    graphdef, state, tx = init_state(config, dataset)
    eval_key = jax.random.split(jax.random.key(config.seed))[1]
    state = jax.device_put(state, replicated)

    os.makedirs(workdir, exist_ok=True)
    checkpoints = ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, "checkpoints")),
        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
    )
    start = 0
    if checkpoints.latest_step() is not None:
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        state = checkpoints.restore(
            checkpoints.latest_step(), args=ocp.args.StandardRestore(abstract)
        )
        start = int(state["step"])
        logger.info("resumed from the checkpoint at step %d", start)
    if is_chief:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json_best_effort(indent=2))
    metrics_log = MetricsLog(
        os.path.join(workdir, "metrics.jsonl"), resume_step=start, enabled=is_chief
    )

    loss_fn = get_objective(config.objective)

    def train_step(state, batch):
        step_key = jax.random.fold_in(jax.random.wrap_key_data(state["rng"]), state["step"])
        data_key, loss_key = jax.random.split(step_key)
        if dataset.binarize:
            batch = {**batch, "x": binarize(data_key, batch["x"])}

        def objective(params):
            return loss_fn(nnx.merge(graphdef, params), batch, loss_key)

        (loss, metrics), grads = jax.value_and_grad(objective, has_aux=True)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        new_state = {
            "params": optax.apply_updates(state["params"], updates),
            "opt_state": opt_state,
            "step": state["step"] + 1,
            "rng": state["rng"],
        }
        return new_state, {"loss": loss, **metrics}

    def eval_step(params, batch, key):
        return evaluate_batch(
            nnx.merge(graphdef, params),
            batch,
            key,
            objective_config=config.objective,
            num_samples=eval_samples,
            chunk_size=eval_chunk,
        )

    train_step = jax.jit(train_step, donate_argnums=0, out_shardings=(replicated, replicated))
    eval_step = jax.jit(eval_step, out_shardings=replicated)

    def run_eval(step):
        summary = _evaluate(
            eval_step, state, dataset, batch_size=eval_batch, sharding=batch_sharding, key=eval_key
        )
        return {"step": step, **summary, "wall_time": time.time() - t0}

    t0 = time.time()
    pending = []
    results = {}
    bar = tqdm(
        range(start, config.num_steps),
        initial=start,
        total=config.num_steps,
        disable=not is_chief,
        desc=f"{config.model.name}/{config.objective.name}",
    )
    for step in bar:
        indices = batch_indices(
            seed=config.seed,
            step=step,
            num_examples=len(dataset.x_train),
            batch_size=config.batch_size,
        )
        state, metrics = train_step(
            state, _global_batch(dataset.x_train, dataset.y_train, indices, batch_sharding)
        )
        pending.append(metrics)
        done = step + 1
        last = done == config.num_steps
        if done % log_every == 0 or last:
            means = {k: float(np.mean([m[k] for m in pending])) for k in pending[0]}
            pending = []
            metrics_log.write({"step": done, **means, "wall_time": time.time() - t0})
            bar.set_postfix(loss=f"{means['loss']:.2f}")
        if done % config.eval_every == 0 or last:
            results = run_eval(done)
            metrics_log.write(results)
        if done % config.checkpoint_every == 0 or last:
            checkpoints.save(done, args=ocp.args.StandardSave(state))
    bar.close()
    checkpoints.wait_until_finished()
    checkpoints.close()
    if not results:  # the checkpoint was already at num_steps: report, don't log twice
        results = run_eval(start)
        if not any(
            r["step"] == start and "test_log_likelihood" in r
            for r in read_metrics(metrics_log.path)
        ):
            metrics_log.write(results)
    if is_chief:
        plot_report(
            read_metrics(metrics_log.path),
            os.path.join(workdir, "report.png"),
            title=f"{config.model.name} / {config.objective.name} "
            f"(K={config.objective.num_samples})",
        )
    return results
