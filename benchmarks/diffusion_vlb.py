"""Benchmark 5: Gaussian diffusion bounds.

(a) The full discrete-time VLB with T = 1000 (every step, as in DDPM's bpd evaluation)
for a batch of digits scaled to [-1, 1], with an MLP denoiser and VDM's linear schedule:
``vectorised`` vmaps ``vb.diffusion.diffusion_loss`` over all T grid times in one call,
``lax.map`` scans over the times (memory of one step), ``python loop`` calls a jitted
single-step function T times and accumulates on the device (T dispatches, no host
round-trips).

(b) A VDM training step (continuous time, learned linear schedule end points, Adam):
``vb.diffusion.gaussian_vlb`` vmapped over the batch vs the same loss written by hand.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

import vbounds as vb
from benchmarks import common

T = 1000
X_DIM, HIDDEN = 64, 256
_LOG_2PI = math.log(2.0 * math.pi)


def _init(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    sizes = (X_DIM + 1, HIDDEN, HIDDEN, X_DIM)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        lim = math.sqrt(6.0 / (fan_in + fan_out))
        layers.append(
            (
                jnp.asarray(rng.uniform(-lim, lim, (fan_in, fan_out)).astype(np.float32)),
                jnp.zeros(fan_out, jnp.float32),
            )
        )
    return {"net": layers, "gamma_min": jnp.float32(-13.3), "gamma_max": jnp.float32(5.0)}


def _eps_fn(params):
    def eps_fn(z, t):
        h = jnp.concatenate([z, jnp.broadcast_to(t, z.shape[:-1] + (1,))], axis=-1)
        for w, b in params["net"][:-1]:
            h = jax.nn.silu(h @ w + b)
        w, b = params["net"][-1]
        return h @ w + b

    return eps_fn


def _gamma_fn(params):
    return functools.partial(
        vb.diffusion.linear_gamma, gamma_min=params["gamma_min"], gamma_max=params["gamma_max"]
    )


def _endpoint_terms(params, x, key):
    """Prior KL and reconstruction per example, from ``gaussian_vlb`` (its diffusion term
    is replaced by the full sum below)."""

    def one(x_i, k):
        terms = vb.diffusion.gaussian_vlb(k, x_i, _eps_fn(params), _gamma_fn(params), num_steps=T)
        return terms.prior + terms.reconstruction

    return jax.vmap(one)(x, jax.random.split(key, x.shape[0]))


def _step_terms(params, x, i, key):
    """Diffusion loss of step i for every example: ``[B]``."""
    t = i.astype(jnp.float32) / T
    eps = jax.random.normal(key, x.shape)

    def one(x_i, e_i):
        return vb.diffusion.diffusion_loss(
            x_i, e_i, t, _eps_fn(params), _gamma_fn(params), num_steps=T
        )

    return jax.vmap(one)(x, eps) / T


def _keys(key):
    return jax.random.split(key, T)


@jax.jit
def full_vlb_vectorised(params, x, key):
    steps = jnp.arange(1, T + 1)
    per_step = jax.vmap(lambda i, k: _step_terms(params, x, i, k))(steps, _keys(key))
    return _endpoint_terms(params, x, key) + jnp.sum(per_step, axis=0)


@jax.jit
def full_vlb_scan(params, x, key):
    steps = jnp.arange(1, T + 1)
    per_step = jax.lax.map(lambda a: _step_terms(params, x, *a), (steps, _keys(key)))
    return _endpoint_terms(params, x, key) + jnp.sum(per_step, axis=0)


_step_jit = jax.jit(_step_terms)
_endpoint_jit = jax.jit(_endpoint_terms)


def full_vlb_python_loop(params, x, key):
    keys = _keys(key)
    total = _endpoint_jit(params, x, key)
    for i in range(1, T + 1):
        total = total + _step_jit(params, x, jnp.int32(i), keys[i - 1])
    return total


# --- VDM training step ----------------------------------------------------------------


def vdm_loss_vbounds(params, x, key):
    def one(x_i, k):
        return vb.diffusion.gaussian_vlb(k, x_i, _eps_fn(params), _gamma_fn(params)).total

    return jnp.mean(jax.vmap(one)(x, jax.random.split(key, x.shape[0])))


def vdm_loss_handwritten(params, x, key):
    """Continuous-time VDM negative ELBO, linear schedule, Gaussian decoder, by hand."""
    keys = jax.random.split(key, x.shape[0])
    g0, g1 = params["gamma_min"], params["gamma_max"]

    def one(x_i, k):
        k_t, k_eps, k_eps0 = jax.random.split(k, 3)
        t = jax.random.uniform(k_t, ())
        eps = jax.random.normal(k_eps, x_i.shape)
        eps0 = jax.random.normal(k_eps0, x_i.shape)
        prior = 0.5 * jnp.sum(jax.nn.sigmoid(-g1) * (x_i**2 - 1.0) + jax.nn.softplus(-g1))
        recon = 0.5 * jnp.sum(_LOG_2PI + g0 + eps0**2)
        gamma_t = g0 + (g1 - g0) * t
        z_t = jnp.sqrt(jax.nn.sigmoid(-gamma_t)) * x_i + jnp.sqrt(jax.nn.sigmoid(gamma_t)) * eps
        eps_hat = _eps_fn(params)(z_t, t)
        return prior + recon + 0.5 * (g1 - g0) * jnp.sum((eps - eps_hat) ** 2)

    return jnp.mean(jax.vmap(one)(x, keys))


def _make_vdm_step(loss_fn):
    opt = optax.adam(1e-3)

    def step(params, opt_state, x, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, key)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return opt, jax.jit(step, donate_argnums=(0, 1))


class _VdmStep:
    def __init__(self, loss_fn, x):
        opt, self.step = _make_vdm_step(loss_fn)
        self.params = _init(0)
        self.opt_state = opt.init(self.params)
        self.x = x
        self.keys = list(jax.random.split(jax.random.key(1), 32))
        self.i = 0
        self.loss = None

    def __call__(self):
        k = self.keys[self.i % len(self.keys)]
        self.params, self.opt_state, self.loss = self.step(self.params, self.opt_state, self.x, k)
        jax.block_until_ready(self.loss)
        self.i += 1


def run(quick: bool = False, gpu: bool = False) -> dict:
    x_train, _ = common.digits()
    batch = 16 if quick and not gpu else 100
    x = jnp.asarray(2.0 * x_train[:batch] - 1.0)
    params = _init(0)
    key = jax.random.key(0)
    rows, out = [], {}

    full = {
        "vectorised (vmap)": lambda: common.block(full_vlb_vectorised(params, x, key)),
        "lax.map": lambda: common.block(full_vlb_scan(params, x, key)),
        "python loop": lambda: common.block(full_vlb_python_loop(params, x, key)),
    }
    values = {name: np.asarray(f()) for name, f in full.items()}
    temp = {
        "vectorised (vmap)": common.compiled_temp_bytes(full_vlb_vectorised, params, x, key),
        "lax.map": common.compiled_temp_bytes(full_vlb_scan, params, x, key),
        "python loop": common.compiled_temp_bytes(_step_jit, params, x, jnp.int32(1), key),
    }
    timings = common.interleaved(full, repeats=3 if quick else 5, warmup=0)
    ref = timings["vectorised (vmap)"]["median_s"]
    spread = max(float(np.max(np.abs(v - values["vectorised (vmap)"]))) for v in values.values())
    for name, t in timings.items():
        rows.append(
            {
                "benchmark": f"full VLB, T={T}, batch {batch}",
                "alternative": name,
                "median": common.fmt_time(t["median_s"]),
                "ratio": f"{t['median_s'] / ref:.2f}x vs vectorised",
                "temp memory": common.fmt_bytes(temp[name]),
                "mean -ELBO (nats)": f"{float(np.mean(values[name])):.2f}",
            }
        )
    out["full_vlb"] = {
        "timings": timings,
        "temp_bytes": temp,
        "max_abs_difference_between_alternatives": spread,
    }

    matmul = common.reference_rates(gpu, quick)["default"]
    out["vdm_step"] = {}
    for vdm_batch in (100, 1000) if gpu else (100,):
        xb = jnp.asarray(2.0 * x_train[:vdm_batch] - 1.0)
        steps = {
            "vbounds": _VdmStep(vdm_loss_vbounds, xb),
            "handwritten": _VdmStep(vdm_loss_handwritten, xb),
        }
        same_draw = {
            "vbounds": float(jax.jit(vdm_loss_vbounds)(params, xb, key)),
            "handwritten": float(jax.jit(vdm_loss_handwritten)(params, xb, key)),
        }
        flops = {
            name: common.compiled_flops(st.step, st.params, st.opt_state, xb, st.keys[0])
            for name, st in steps.items()
        }
        vdm_t = common.interleaved(steps, repeats=7 if quick else 25, inner=5, warmup=2)
        ref = vdm_t["handwritten"]["median_s"]
        for name, t in vdm_t.items():
            row = {
                "benchmark": f"VDM training step, batch {vdm_batch}",
                "alternative": name,
                "median": common.fmt_time(t["median_s"]),
                "ratio": f"{t['median_s'] / ref:.2f}x vs handwritten",
                "temp memory": "n/a",
                "mean -ELBO (nats)": f"{same_draw[name]:.2f}",
            }
            if flops[name]:
                rate = flops[name] / t["median_s"]
                row["matmul fraction"] = f"{rate / matmul['flops_per_s']:.1%}"
            rows.append(row)
        out["vdm_step"][f"batch={vdm_batch}"] = {
            "timings": vdm_t,
            "loss_same_draw": same_draw,
            "flops_per_step": flops,
        }
    out["matmul"] = matmul
    return {
        "title": "Diffusion: full T=1000 VLB and a VDM training step",
        "results": out,
        "rows": rows,
        "notes": [
            f"full VLB alternatives agree to {spread:.2e} nats (same keys, same per-step draws)",
        ],
    }
