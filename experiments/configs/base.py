"""Building blocks of experiment configs: every config has the same top-level fields.

A section is built from a component's declared hyperparameters
(:func:`section`), so each key it can take is in the config and can be overridden from
the command line, e.g. ``--config.objective.beta=4`` for ``weighted_elbo``.
"""

import ml_collections

from vbounds.lab.registry import lookup


def section(kind: str, name: str, **overrides) -> ml_collections.ConfigDict:
    """The ``model`` / ``objective`` / ``data`` section of a component with its defaults."""
    return lookup(kind, name).config(name, **overrides)


def get_base_config(
    *,
    model: tuple[str, dict] = ("vae", {}),
    objective: tuple[str, dict] = ("iwae", {}),
    data: tuple[str, dict] = ("digits", {}),
) -> ml_collections.ConfigDict:
    """The fields every config has, at the digits scale.

    The default model is the IWAE paper's one-stochastic-layer VAE, scaled to 8x8
    digits (64 inputs): tanh MLPs of 100 units, 16 latent units; the objective IWAE with
    K = 5; evaluation with 5,000 importance samples.
    """
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.num_steps = 3000
    config.batch_size = 100
    config.eval_every = 1500
    config.checkpoint_every = 500
    config.log_every = 50
    config.model = section("model", model[0], **model[1])
    config.objective = section("objective", objective[0], **objective[1])
    config.data = section("dataset", data[0], **data[1])
    if "path" not in config.data:
        config.data.path = ""
    config.optimizer = ml_collections.ConfigDict(
        {
            "name": "adam",
            "learning_rate": 1e-3,
            "eps": 1e-4,
            "schedule": "constant",
            "grad_clip_norm": ml_collections.config_dict.placeholder(float),
        }
    )
    config.eval = ml_collections.ConfigDict({"batch_size": 100})
    config.distributed = ml_collections.ConfigDict(
        {"coordinator_address": "", "num_processes": 1, "process_id": 0}
    )
    return config


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The ``smoke`` variant of a config (``--config=<file>.py:smoke``): the same
    model-objective pair, a few steps of tiny batches (the test suite runs it)."""
    config.num_steps = 6
    config.batch_size = 8
    config.eval_every = 3
    config.checkpoint_every = 3
    config.log_every = 1
    config.eval.batch_size = 8
    return config


def smoke_vae(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """:func:`smoke` for the latent-variable models: small networks, 20 test samples."""
    config = smoke(config)
    if config.model.name == "two_layer_vae":
        config.model.latent_dims = (4, 2)
        config.model.hidden_sizes = ((16,), (8,))
    elif "latent_dim" in config.model:
        config.model.hidden_sizes = (16,)
        config.model.latent_dim = 4
    config.objective.eval_num_samples = 20
    config.data.num_test = 16
    return config
