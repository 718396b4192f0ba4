"""Multi-task diffusion and the learnable clock path against exact answers.

* ``monotone_path``: exact end points, a positive slope for any parameters, the identity
  at initialisation, finite gradients.
* ``multitask_vlb`` with the identity path and networks that ignore the other modalities is
  ``gaussian_vlb`` and ``mdlm_vlb`` per modality, value for value, with the documented
  draws; with one Gaussian and one masked modality it is ``joint_vlb`` for the same key.
* For fixed draws (a deterministic reparameterisation) and denoisers that depend on time
  only through their own modality's noise level, the integral of each diffusion term over
  ``u`` does not depend on the path: with the change of variables to each clock it is the
  same integral over noise levels (quadrature on the pieces where the integrand is smooth,
  against a closed form for the masked modality).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

vd = vb.diffusion
V, MASK = 4, 3


def gamma_fn(s):
    return vd.linear_gamma(s, gamma_min=-6.0, gamma_max=6.0)


def gamma_2(s):
    return vd.cosine_gamma(s, gamma_min=-5.0, gamma_max=4.0)


def alpha_fn(s):
    return 1.0 - s


def alpha_soft(s):  # alpha(0) = 0.9 < 1: the reconstruction term is not zero
    return 0.9 * (1.0 - s)


# --------------------------------------------------------------------------------------
# monotone_path
# --------------------------------------------------------------------------------------


def test_monotone_path_is_exact_at_the_ends_increasing_and_the_identity_at_init():
    grid = jnp.linspace(0.0, 1.0, 41)

    @jax.jit
    def check(params):
        def taus_of(p):
            return jax.vmap(functools.partial(vd.monotone_path, p))(grid)

        slopes = jax.vmap(jax.jacfwd(functools.partial(vd.monotone_path, params)))(grid)
        return taus_of(params), slopes, jax.grad(lambda p: jnp.sum(taus_of(p)))(params)

    taus, _, _ = check(vd.init_monotone_path(3, num_knots=5))
    np.testing.assert_allclose(taus, jnp.broadcast_to(grid[:, None], (41, 3)), atol=1e-6)
    eps32 = float(jnp.finfo(jnp.float32).eps)
    for seed in range(2):
        params = 2.0 * jax.random.normal(jax.random.key(seed), (3, 5))
        taus, slopes, grads = check(params)
        assert np.all(np.asarray(taus[0]) == 0.0) and np.all(np.asarray(taus[-1]) == 1.0)
        assert np.all(np.diff(np.asarray(taus), axis=0) > 0)
        # The slope on piece k is K softmax(params)_k, on every piece and at every u, up to
        # the rounding of a difference of two float32 cumulative sums of K terms, times K.
        pieces = jnp.clip(jnp.floor(grid * 5), 0, 4).astype(int)
        np.testing.assert_allclose(
            slopes, 5 * jax.nn.softmax(params)[:, pieces].T, rtol=1e-5, atol=2 * 5 * 5 * eps32
        )
        assert np.all(np.asarray(slopes) > 0)
        assert np.all(np.isfinite(grads)) and np.any(grads != 0)
    # One clock from [K] params.
    assert vd.monotone_path(jnp.zeros(4), 0.5).shape == ()


# --------------------------------------------------------------------------------------
# multitask_vlb
# --------------------------------------------------------------------------------------

DATA = (jnp.array([0.5, -0.3, 1.2]), jnp.array([0, 2, 1, 1]), jnp.array([[0.1, -0.9]]))
SPECS = (
    vd.Modality("gaussian", gamma_fn),
    vd.Modality("masked", alpha_soft, mask_index=MASK),
    vd.Modality("gaussian", gamma_2),
)


def eps_head(z, u):
    return 0.4 * z + 0.1 * u


def logits_head(c, u):
    return jnp.eye(V)[c] * (1.0 + u) + 0.1 * jnp.arange(V)


def separate(states, u):  # each modality's output sees only its own state
    z1, c1, z2 = states
    return eps_head(z1, u), logits_head(c1, u), eps_head(z2, u)


def test_identity_path_is_gaussian_vlb_and_mdlm_vlb_value_for_value():
    key = jax.random.key(3)
    keys = jax.random.split(key, len(DATA))

    @jax.jit
    def both(key):
        terms = vd.multitask_vlb(key, DATA, separate, SPECS)
        u = terms.t
        family = (
            vd.gaussian_vlb(keys[0], DATA[0], eps_head, gamma_fn, t=u),
            vd.mdlm_vlb(keys[1], DATA[1], logits_head, alpha_soft, mask_index=MASK, t=u),
            # No t: the last modality's own draw of its time is the shared u.
            vd.gaussian_vlb(keys[2], DATA[2], eps_head, gamma_2),
        )
        return terms, family

    terms, family = both(key)
    for mine, theirs in zip(terms.terms, family):
        np.testing.assert_allclose(jnp.stack(mine), jnp.stack(theirs), rtol=1e-6)
    np.testing.assert_allclose(terms.total, sum(f.total for f in family), rtol=1e-6)
    assert float(terms.terms[1].reconstruction) > 0  # alpha(0) < 1 is exercised


X, C = DATA[0], DATA[1]


def eps_fn(z, c, u):  # joint networks: each output uses the other modality
    return 0.4 * z + 0.1 * jnp.sum(c == MASK) * u


def logits_fn(z, c, u):
    return jnp.outer(jnp.ones(C.shape), jnp.arange(V, dtype=z.dtype)) * jnp.sum(z) + u


def test_two_modalities_are_joint_vlb_for_the_same_key():
    specs = (vd.Modality("gaussian", gamma_fn), vd.Modality("masked", alpha_soft, mask_index=MASK))

    def network(states, u):  # a dict of modalities: outputs under the same names
        z, c = states["coords"], states["types"]
        return {"coords": eps_fn(z, c, u), "types": logits_fn(z, c, u)}

    def both(params, key):  # a learned path, differentiable in its parameters
        path_fn = functools.partial(vd.monotone_path, params)
        joint = vd.joint_vlb(
            key, X, C, eps_fn, logits_fn, gamma_fn, alpha_soft, mask_index=MASK, path_fn=path_fn
        )
        multi = vd.multitask_vlb(
            key,
            {"coords": X, "types": C},
            network,
            dict(zip(("coords", "types"), specs)),
            path_fn=path_fn,
        )
        return multi.total, (joint, multi)

    params = jax.random.normal(jax.random.key(9), (2, 4))
    grads, (joint, multi) = jax.jit(jax.vmap(jax.grad(both, has_aux=True), in_axes=(None, 0)))(
        params, jax.random.split(jax.random.key(0), 2)
    )
    np.testing.assert_allclose(
        jnp.stack(multi.terms["coords"]), jnp.stack(joint.continuous), rtol=1e-6
    )
    np.testing.assert_allclose(
        jnp.stack(multi.terms["types"]), jnp.stack(joint.discrete), rtol=1e-6
    )
    np.testing.assert_allclose(multi.total, joint.total, rtol=1e-6)
    assert np.all(np.isfinite(grads)) and np.any(grads != 0)


def test_continuous_time_bound_is_invariant_to_the_path():
    with jax.enable_x64(True):
        data = (jnp.array([0.5, -0.3, 1.2]), jnp.array([0, 2, 1, 1, 0]), jnp.array([0.8, -0.1]))
        specs = (
            vd.Modality("gaussian", gamma_fn),
            vd.Modality("masked", alpha_fn, mask_index=MASK),
            vd.Modality("gaussian", gamma_2),
        )
        key, num_knots = jax.random.key(5), 6
        # The mask uniforms of the masked modality (its key's second subkey), fixed by `key`.
        r = jax.random.uniform(jax.random.split(jax.random.split(key, 3)[1], 3)[1], (5,))

        @jax.jit
        def integrals(params, nodes, weights):
            path_fn = functools.partial(vd.monotone_path, params)

            def network(states, u):  # each head sees time only through its own noise level
                g1, _, g2 = (f(tau) for f, tau in zip((gamma_fn, alpha_fn, gamma_2), path_fn(u)))
                return (jax.nn.sigmoid(g1) * states[0], jnp.zeros((5, V)), jnp.tanh(g2) * states[2])

            def diffusion(u):
                terms = vd.multitask_vlb(key, data, network, specs, path_fn=path_fn, t=u)
                return jnp.stack([term.diffusion for term in terms.terms])

            return weights @ jax.vmap(diffusion)(nodes)

        grid = np.linspace(0.0, 1.0, num_knots + 1)
        gl_nodes, gl_weights = np.polynomial.legendre.leggauss(24)
        results = []
        for seed in (None, 0, 1):
            if seed is None:
                params = vd.init_monotone_path(3, num_knots=num_knots, dtype=jnp.float64)
            else:
                params = 1.5 * jax.random.normal(jax.random.key(seed), (3, num_knots), jnp.float64)
            # Gauss-Legendre on every piece where the integrands are smooth: between the
            # path's knots, and the points where a token's mask flips (alpha(tau_2(u)) = r).
            knots = np.asarray(jax.vmap(functools.partial(vd.monotone_path, params))(grid))
            jumps = np.interp(1.0 - np.asarray(r), knots[:, 1], grid)
            edges = np.sort(np.concatenate([grid, jumps]))
            lo, hi = edges[:-1, None], edges[1:, None]
            nodes = ((hi + lo) / 2 + (hi - lo) / 2 * gl_nodes).ravel()
            weights = ((hi - lo) / 2 * gl_weights).ravel()
            results.append(np.asarray(integrals(params, nodes, weights)))
        results = np.array(results)
        # Masked, uniform logits: log V times int_{1 - r}^{1} dtau / tau, summed over tokens.
        np.testing.assert_allclose(results[:, 1], -np.log(V) * np.sum(np.log(1.0 - r)), rtol=1e-10)
        # Gaussian: on every path the same integral over gamma, of a smooth integrand.
        np.testing.assert_allclose(results[1:, [0, 2]], results[[0, 0], :][:, [0, 2]], rtol=1e-9)


def _net3(states, u):
    return jnp.zeros(3), jnp.zeros((4, V)), jnp.zeros((1, 2))


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"modalities": SPECS[:2]}, ValueError, "`modalities`"),
        ({"modalities": {"a": SPECS[0]}}, TypeError, "`modalities`"),
        ({"data": {"a": DATA[0]}, "modalities": {"b": SPECS[0]}}, ValueError, "`modalities`"),
        ({"data": DATA[0]}, TypeError, "`data`"),
        ({"network": "net"}, TypeError, "`network`"),
        ({"path_fn": 1.0}, TypeError, "`path_fn`"),
        ({"path_fn": lambda u: (u, u)}, ValueError, "`path_fn`"),
        (
            {"modalities": (SPECS[0], SPECS[1]._replace(schedule=0.5), SPECS[2])},
            TypeError,
            r"`modalities\[1\].schedule`",
        ),
        (
            {"modalities": (SPECS[0], SPECS[1]._replace(kind="uniform"), SPECS[2])},
            ValueError,
            r"`modalities\[1\].kind`",
        ),
        (
            {"modalities": (SPECS[0], SPECS[1]._replace(mask_index=None), SPECS[2])},
            TypeError,
            r"`modalities\[1\].mask_index`",
        ),
        ({"modalities": (SPECS[0], "masked", SPECS[2])}, TypeError, r"`modalities\[1\]`"),
        ({"data": (DATA[0], DATA[1].astype(float), DATA[2])}, TypeError, r"`data\[1\]`"),
        ({"network": lambda s, u: _net3(s, u)[:2]}, ValueError, "`network`"),
        (
            {"network": lambda s, u: (*_net3(s, u)[:1], jnp.zeros((4, 2)), _net3(s, u)[2])},
            ValueError,
            "`network`",
        ),
        (
            {"network": lambda s, u: (jnp.zeros(2), *_net3(s, u)[1:])},
            ValueError,
            r"`network` must return eps_hat for `data\[0\]`",
        ),
    ],
)
def test_bad_arguments_raise(change, error, match):
    args = {"data": DATA, "network": _net3, "modalities": SPECS}
    args.update(change)
    with pytest.raises(error, match=match):  # at trace time
        jax.jit(lambda key: vd.multitask_vlb(key, **args))(jax.random.key(0))


def test_bad_path_parameters_raise():
    with pytest.raises(ValueError, match="`params`"):
        vd.monotone_path(jnp.zeros((2, 3, 4)), 0.5)
    with pytest.raises(ValueError, match="`u`"):
        vd.monotone_path(jnp.zeros((2, 3)), jnp.zeros(2))
    with pytest.raises(TypeError, match="`num_knots`"):
        vd.init_monotone_path(2, num_knots=2.5)
