"""The benchmark VAE in plain JAX: MLP 64-200-200-50, tanh, diagonal Gaussian encoder,
Bernoulli decoder, standard normal prior (the IWAE paper's one-layer architecture).

Every alternative (vbounds, hand-written JAX, numpyro, PyTorch) is built from the same
parameter arrays made here, so shapes and initial values are identical.
"""

from __future__ import annotations

import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import optax

import vbounds as vb

X_DIM, HIDDEN, Z_DIM = 64, 200, 50
ENC_SIZES = (X_DIM, HIDDEN, HIDDEN, 2 * Z_DIM)
DEC_SIZES = (Z_DIM, HIDDEN, HIDDEN, X_DIM)
LEARNING_RATE = 1e-3
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def init_params(seed: int = 0) -> dict:
    """``{"enc": [(W, b), ...], "dec": [...]}`` as numpy float32 (Glorot-uniform weights)."""
    rng = np.random.default_rng(seed)

    def mlp(sizes):
        layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            lim = math.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-lim, lim, (fan_in, fan_out)).astype(np.float32)
            layers.append((w, np.zeros(fan_out, np.float32)))
        return layers

    return {"enc": mlp(ENC_SIZES), "dec": mlp(DEC_SIZES)}


def mlp_apply(layers, h):
    for w, b in layers[:-1]:
        h = jnp.tanh(h @ w + b)
    w, b = layers[-1]
    return h @ w + b


def encode(params, x):
    out = mlp_apply(params["enc"], x)
    return out[..., :Z_DIM], out[..., Z_DIM:]


def bernoulli_log_prob(x, logits):
    """``sum_d x log sigmoid(l) + (1 - x) log sigmoid(-l)``, stable in float32."""
    return jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)


def log_joint_fn(params, x):
    """``z [K, Z] -> log p(x, z) [K]`` for one example ``x`` [X]."""

    def log_joint(z):
        logits = mlp_apply(params["dec"], z)
        log_prior = -0.5 * jnp.sum(z * z, axis=-1) - Z_DIM * _HALF_LOG_2PI
        return bernoulli_log_prob(x, logits) + log_prior

    return log_joint


def make_q(q_params):
    mean, log_std = q_params
    return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))


def example_keys(key, batch: int):
    return jax.random.split(key, batch)


# --- vbounds -------------------------------------------------------------------------


def vbounds_loss(params, x, key, *, num_samples: int, estimator: str = "reparam"):
    """Negative IWAE bound averaged over the batch, via ``vb.estimate`` vmapped."""

    def one(x_i, key_i):
        est = vb.estimate(
            key_i,
            log_joint_fn(params, x_i),
            make_q,
            encode(params, x_i),
            num_samples=num_samples,
            bound="iwae",
            estimator=estimator,
        )
        return est.surrogate

    keys = example_keys(key, x.shape[0])
    return -jnp.mean(jax.vmap(one)(x, keys))


# --- hand-written IWAE -------------------------------------------------------------


def handwritten_loss(params, x, key, *, num_samples: int):
    """The same negative IWAE bound written directly: reparameterised draws, log-weights,
    ``logsumexp`` by hand. Draws per example from the same keys as ``vbounds_loss``."""
    keys = example_keys(key, x.shape[0])
    eps = jax.vmap(lambda k: jax.random.normal(k, (num_samples, Z_DIM)))(keys)  # [B, K, Z]
    mean, log_std = encode(params, x)  # [B, Z]
    z = mean[:, None, :] + jnp.exp(log_std)[:, None, :] * eps
    logits = mlp_apply(params["dec"], z)  # [B, K, X]
    log_px_z = bernoulli_log_prob(x[:, None, :], logits)
    log_pz = -0.5 * jnp.sum(z * z, axis=-1)
    # (z - mean) / std == eps identically in the parameters: same value, same gradient.
    log_qz = -0.5 * jnp.sum(eps * eps, axis=-1) - jnp.sum(log_std, axis=-1)[:, None]
    log_w = log_px_z + log_pz - log_qz  # the 2*pi constants cancel
    m = jax.lax.stop_gradient(jnp.max(log_w, axis=1, keepdims=True))
    lse = jnp.log(jnp.sum(jnp.exp(log_w - m), axis=1)) + m[:, 0]
    return -jnp.mean(lse - math.log(num_samples))


# --- one jitted Adam step around any loss --------------------------------------------


def optimizer():
    return optax.adam(LEARNING_RATE)


def make_step(loss_fn, *, donate: bool = True):
    """``step(params, opt_state, x, key) -> (params, opt_state, loss)``, jitted once."""
    opt = optimizer()

    def step(params, opt_state, x, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, key)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1) if donate else ())


def init_state(seed: int = 0):
    params = jax.tree.map(jnp.asarray, init_params(seed))
    return params, _init_opt(params)


@jax.jit
def _init_opt(params):
    return optimizer().init(params)
