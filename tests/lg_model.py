"""The linear-Gaussian latent model with exact answers, shared by the core tests.

p(z) = N(theta, I_d), p(x | z) = N(z, I_d): p(x) = N(theta, 2 I_d), the posterior is
N((theta + x) / 2, I_d / 2), and the ELBO of q = N(m, diag(s^2)) has a closed form.
"""

import math

import distrax
import jax.numpy as jnp

LOG_2PI = math.log(2 * math.pi)


def log_joint_fn(theta, x):
    def log_joint(z):
        prior = distrax.MultivariateNormalDiag(theta, jnp.ones_like(theta)).log_prob(z)
        lik = distrax.MultivariateNormalDiag(z, jnp.ones_like(z)).log_prob(x)
        return prior + lik

    return log_joint


def make_q(params):
    return distrax.MultivariateNormalDiag(params["mean"], jnp.exp(params["log_scale"]))


def q_params(mean, scale):
    mean = jnp.asarray(mean, jnp.float32)
    return {"mean": mean, "log_scale": jnp.log(jnp.broadcast_to(scale, mean.shape) * 1.0)}


def posterior_params(theta, x):
    return q_params((theta + x) / 2, math.sqrt(0.5))


def exact_log_px(theta, x):
    d = x.shape[-1]
    return -0.5 * d * (LOG_2PI + math.log(2.0)) - 0.25 * jnp.sum((x - theta) ** 2)


def analytic_elbo(theta, x, params):
    m, s2 = params["mean"], jnp.exp(2 * params["log_scale"])
    e_prior = -0.5 * LOG_2PI - 0.5 * ((m - theta) ** 2 + s2)
    e_lik = -0.5 * LOG_2PI - 0.5 * ((x - m) ** 2 + s2)
    entropy = 0.5 * (LOG_2PI + 1.0 + jnp.log(s2))
    return jnp.sum(e_prior + e_lik + entropy)
