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


# --- hand-written DReG with one backward pass --------------------------------------------


def _log_weights(dec, x, z, mean_s, log_std_s):
    """``log p(x, z) - log q(z)`` with q's parameters given (stopped by the caller)."""
    logits = mlp_apply(dec, z)
    log_pz = -0.5 * jnp.sum(z * z, axis=-1)
    u = (z - mean_s[:, None, :]) * jnp.exp(-log_std_s)[:, None, :]
    log_qz = -0.5 * jnp.sum(u * u, axis=-1) - jnp.sum(log_std_s, axis=-1)[:, None]
    return bernoulli_log_prob(x[:, None, :], logits) + log_pz - log_qz


@jax.custom_vjp
def _dreg_log_weights(dec, x, z, mean_s, log_std_s):
    return _log_weights(dec, x, z, mean_s, log_std_s)


def _dreg_fwd(dec, x, z, mean_s, log_std_s):
    log_w, vjp_fn = jax.vjp(lambda d, zz: _log_weights(d, x, zz, mean_s, log_std_s), dec, z)
    return log_w, (vjp_fn, jax.nn.softmax(log_w, axis=-1), x, mean_s, log_std_s)


def _dreg_bwd(res, ct):
    vjp_fn, w_norm, x, mean_s, log_std_s = res
    d_dec, d_z = vjp_fn(ct)
    # The surrogate feeds ct = w~ to every log-weight: the model gets sum_k w~_k grad log w_k,
    # and scaling the per-sample z-cotangent by w~_k once more gives DReG's w~_k^2 path term.
    zeros = jax.tree.map(jnp.zeros_like, (x, mean_s, log_std_s))
    return d_dec, zeros[0], d_z * w_norm[..., None], zeros[1], zeros[2]


_dreg_log_weights.defvjp(_dreg_fwd, _dreg_bwd)


def handwritten_dreg_loss(params, x, key, *, num_samples: int):
    """IWAE with the DReG gradient in one forward and one backward pass (a custom VJP
    rescales the per-sample cotangent of z), same draws as ``vbounds_loss``."""
    keys = example_keys(key, x.shape[0])
    eps = jax.vmap(lambda k: jax.random.normal(k, (num_samples, Z_DIM)))(keys)
    mean, log_std = encode(params, x)
    z = mean[:, None, :] + jnp.exp(log_std)[:, None, :] * eps
    stop = jax.lax.stop_gradient
    log_w = _dreg_log_weights(params["dec"], x, z, stop(mean), stop(log_std))
    log_w_s = stop(log_w)
    bound = jax.nn.logsumexp(log_w_s, axis=1) - math.log(num_samples)
    surrogate = bound + jnp.sum(stop(jax.nn.softmax(log_w_s, axis=1)) * (log_w - log_w_s), axis=1)
    return -jnp.mean(surrogate)
