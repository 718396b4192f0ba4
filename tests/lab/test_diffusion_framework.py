"""The diffusion family in the framework: the datasets are the earlier study's split, each
objective's loss and evaluation equal the core bounds of ``vb.diffusion`` on the same
draws (in bits per dimension), and the samplers put their mass where the model does."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from sklearn.datasets import load_digits

import vbounds as vb
from vbounds.lab.data import load_dataset
from vbounds.lab.models import build_model
from vbounds.lab.models.diffusion import VDM, DiscreteDenoiser, MuLANGrid
from vbounds.lab.objectives import make_objective
from vbounds.lab.objectives.diffusion import make_sampler, summarize
from vbounds.lab.registry import lookup

vd = vb.diffusion
BITS = 64 * math.log(2.0)


def _section(kind, name, **overrides):
    return lookup(kind, name).config(name, **overrides)


def _objective(name, **overrides):
    return make_objective(_section("objective", name, **overrides))


def test_datasets_are_the_old_split_as_integer_classes():
    images = load_digits().images.reshape(-1, 64).astype(np.int32)
    order = np.random.default_rng(0).permutation(len(images))
    levels = load_dataset(_section("dataset", "digits_levels"))
    binary = load_dataset(_section("dataset", "digits_binary"))
    np.testing.assert_array_equal(levels.x_test, images[order[:297]])
    np.testing.assert_array_equal(levels.x_train, images[order[297:]])
    np.testing.assert_array_equal(binary.x_test, images[order[:297]] > 8)
    np.testing.assert_array_equal(binary.x_train, images[order[297:]] > 8)
    batch = binary.train_batch(seed=0, step=3, batch_size=16)
    assert batch["x"].dtype == np.int32 and batch["x"].shape == (16, 64)
    assert levels.num_classes == 17 and levels.x_train.max() == 16 and binary.num_classes == 2
    with pytest.raises(ValueError, match="data.threshold"):
        load_dataset(_section("dataset", "digits_binary", threshold=16))


def _models():
    rngs = nnx.Rngs(0)
    return {
        "vdm": VDM(64, hidden_sizes=(8,), schedule="learned", schedule_hidden=4, rngs=rngs),
        "discrete": DiscreteDenoiser(64, hidden_sizes=(8,), rngs=rngs),
        "mulan": MuLANGrid(
            64,
            latent_dim=2,
            hidden_sizes=(8,),
            encoder_hidden_sizes=(4,),
            schedule_hidden_sizes=(4,),
            fourier_exponents=(4,),
            rngs=rngs,
        ),
        "mulan_grid": MuLANGrid(
            64,
            denoiser="grid",
            latent_dim=2,
            hidden_sizes=(8,),
            encoder_hidden_sizes=(4,),
            schedule_hidden_sizes=(4,),
            fourier_exponents=(4,),
            rngs=rngs,
        ),
    }


def _d3pm_process(noise, num_steps):
    """Built here from the formulas, not from the objective's helper."""
    betas = 1.0 / (num_steps - jnp.arange(1, num_steps + 1) + 1.0)
    if noise == "uniform":
        return vd.uniform_transitions(betas, 2), jnp.full(2, 0.5)
    return vd.absorbing_transitions(betas, 3), jnp.array([0.0, 0.0, 1.0])


def _core_total(name, model, x, key, t, num_steps=None):
    """One draw of the core bound of one example (nats), keyed as the objective documents."""
    grid = 2.0 * x.astype(jnp.float32) / 16 - 1.0
    masked = lambda x_t, s: jnp.concatenate([model(x_t, s), jnp.full((64, 1), -jnp.inf)], -1)  # noqa: E731
    if name == "vdm":
        return vd.gaussian_vlb(
            key,
            grid,
            lambda z, s: model.denoiser(z, model.gamma(s)),
            model.gamma,
            num_steps=num_steps,
            decoder="discretized",
            num_bins=17,
            t=t,
        ).total
    if name.startswith("mulan"):
        mean, log_var = model.encoder(grid)

        def eps_fn(z, s, u):
            if name == "mulan":
                return model.denoiser(z, s, u)
            return model.denoiser(z, model.schedule(s, u), time=s, context=u)

        return vd.mulan_vlb(
            key,
            grid,
            eps_fn,
            model.schedule,
            mean,
            log_var,
            num_steps=num_steps,
            decoder="discretized",
            num_bins=17,
            t=t,
        ).total
    if name.startswith("d3pm"):
        noise = name.split("_")[1]
        transitions, prior = _d3pm_process(noise, 7)
        logits = masked if noise == "absorbing" else model
        logits_fn = lambda x_t, i: logits(x_t, i / 7)  # noqa: E731
        return vd.categorical_vlb(key, x, logits_fn, transitions, prior).total
    if name == "mdlm":
        return vd.mdlm_vlb(key, x, masked, lambda s: 1.0 - s, mask_index=2, t=t).total
    return vd.udlm_vlb(key, x, model, lambda s: 1.0 - s, num_classes=2, t=t).total


CASES = {
    "vdm": ("vdm", {}, "vdm"),
    "mulan": ("mulan", {}, "mulan"),
    "mulan_grid": ("mulan", {}, "mulan_grid"),
    "d3pm_uniform": ("d3pm", {"noise": "uniform", "num_steps": 7}, "discrete"),
    "d3pm_absorbing": ("d3pm", {"noise": "absorbing", "num_steps": 7}, "discrete"),
    "mdlm": ("mdlm", {}, "discrete"),
    "udlm": ("udlm", {}, "discrete"),
}


@pytest.mark.parametrize("case", CASES)
def test_loss_is_the_core_bound_in_bits_per_dim(case):
    name, overrides, model_name = CASES[case]
    model = _models()[model_name]
    data = "digits_levels" if model_name != "discrete" else "digits_binary"
    x = jnp.asarray(load_dataset(_section("dataset", data)).x_test[:4])
    objective = _objective(name, **overrides)

    @jax.jit
    def run(key):
        loss, metrics = objective.loss(model, {"x": x}, key)
        k_t, k = jax.random.split(key)
        times, keys = vd.stratified_times(k_t, 4), jax.random.split(k, 4)
        core = jax.vmap(lambda xb, kb, tb: _core_total(case, model, xb, kb, tb))(x, keys, times)
        return loss, metrics, core

    loss, metrics, core = run(jax.random.key(3))
    np.testing.assert_allclose(float(loss), np.mean(core) / BITS, rtol=2e-5)
    terms = ("prior", "reconstruction", "diffusion") + (("latent",) if name == "mulan" else ())
    assert set(metrics) == {"bpd", *terms}
    np.testing.assert_allclose(float(sum(metrics[k] for k in terms)), float(loss), rtol=1e-5)


def test_vdm_evaluation_is_the_mean_of_core_draws_and_the_prior_is_exact():
    model = _models()["vdm"]
    x = jnp.asarray(load_dataset(_section("dataset", "digits_levels")).x_test[:3])
    objective = _objective("vdm", eval_repeats=4, eval_num_steps=(10,))

    def core_draws(k_b, xb, steps):
        k_t, k_draw = jax.random.split(k_b)
        k_a, k_c = jax.random.split(k_t)
        times = jnp.concatenate([vd.stratified_times(k_a, 2), vd.stratified_times(k_c, 2)])
        keys = jax.random.split(k_draw, 4)
        draw = lambda k, t: _core_total("vdm", model, xb, k, t, steps) / BITS  # noqa: E731
        return jax.vmap(draw)(keys, times)

    @jax.jit
    def run(key):
        out = objective.evaluate(model, {"x": x}, key)
        keys = jax.random.split(key, 3)
        draws = {
            suffix: jax.vmap(lambda k, xb, s=steps: core_draws(k, xb, s))(keys, x)
            for suffix, steps in (("", None), ("_T10", 10))
        }
        return out, draws

    out, draws = run(jax.random.key(5))
    assert {"bpd", "bpd_T10", "bpd_mc_var", "bpd_T10_mc_var", "prior"} <= set(out)
    for suffix in ("", "_T10"):
        d = np.asarray(draws[suffix])
        np.testing.assert_allclose(out[f"bpd{suffix}"], d.mean(1), rtol=2e-5)
        half_gap = (d[:, :2].mean(1) - d[:, 2:].mean(1)) / 2
        np.testing.assert_allclose(out[f"bpd{suffix}_mc_var"], half_gap**2, rtol=1e-3)
    # The prior term KL(q(z_1 | x) || N(0, I)) in closed form at gamma(1).
    g1 = float(model.gamma(jnp.ones(())))
    grid = 2.0 * np.asarray(x, np.float64) / 16 - 1.0
    alpha2 = 1.0 / (1.0 + math.exp(g1))
    prior = 0.5 * np.sum(alpha2 * (grid**2 - 1.0) + math.log1p(math.exp(-g1)), axis=1) / BITS
    np.testing.assert_allclose(out["prior"], prior, rtol=1e-4)


def test_summary_means_and_monte_carlo_error():
    outputs = {"bpd": np.array([1.0, 2.0, 3.0, 6.0]), "bpd_mc_var": np.array([1, 4, 4, 7.0])}
    summary = summarize(outputs)
    assert summary == {"test_bpd": 3.0, "test_bpd_mc_se": 1.0}


@pytest.mark.parametrize("name", ["d3pm_uniform", "d3pm_absorbing", "mdlm", "udlm"])
def test_discrete_samples_follow_a_certain_model(name):
    """A model sure that every pixel is 1 (logits -15 / +15) gives all-ones samples."""
    model = _models()["discrete"]
    last = model.mlp.layers[-1]
    last.kernel[...] = jnp.zeros_like(last.kernel[...])
    last.bias[...] = jnp.tile(jnp.array([-15.0, 15.0]), 64)
    objective, _, noise = name.partition("_")
    extra = {"noise": noise, "num_steps": 6} if noise else {"sample_steps": 6}
    sample = make_sampler(_section("objective", objective, **extra))
    samples = np.asarray(jax.jit(lambda k: sample(model, k, 8))(jax.random.key(0)))
    assert samples.shape == (8, 64) and samples.dtype == np.int32
    np.testing.assert_array_equal(samples, 1)


def test_gaussian_samples_are_grey_levels():
    models = _models()
    for model in (models["vdm"], models["mulan"], models["mulan_grid"]):
        samples = np.asarray(jax.jit(lambda k, m=model: m.sample(k, 3, 5))(jax.random.key(0)))
        assert samples.shape == (3, 64) and samples.min() >= 0 and samples.max() <= 16


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match="objective.noise"):
        _objective("d3pm", noise="gaussian")
    with pytest.raises(ValueError, match="objective.eval_repeats"):
        _objective("vdm", eval_repeats=3)
    with pytest.raises(ValueError, match="objective.schedule"):
        _objective("udlm", schedule="square")
    levels = load_dataset(_section("dataset", "digits_levels"))
    with pytest.raises(ValueError, match="model.num_classes"):
        build_model(
            _section("model", "discrete_denoiser"),
            example_batch=levels.train_batch(seed=0, step=0, batch_size=32),
        )
    with pytest.raises(ValueError, match="num_bins"):
        _objective("vdm", num_bins=9).loss(
            _models()["vdm"], {"x": jnp.zeros((2, 64), jnp.int32)}, jax.random.key(0)
        )
