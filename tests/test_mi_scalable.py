"""vb.mi.from_critic: the chunked (lax.scan) and all-gather (shard_map over 4 simulated
devices) forms equal the dense bounds on the same global batch, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from vbounds import mi
from vbounds.mi.scalable import CRITIC_BOUNDS

DIM = 3


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    y = (0.8 * x + 0.6 * rng.normal(size=(n, DIM))).astype(np.float32)
    params = {
        "w": rng.normal(size=(DIM, DIM)).astype(np.float32),
        "b": rng.normal(size=(DIM,)).astype(np.float32),
    }
    extras = {
        "log_baseline": rng.normal(size=n).astype(np.float32),
        "clip": 1.0,
        "conditions": (np.arange(n) % 3).astype(np.int32),
        "alpha": 0.3,
        # A moving average part-way through training, so its gradient correction matters.
        "mine_state": mi.MineState(jnp.float32(0.4), jnp.int32(3)),
        "decay": 0.9,
    }
    return x, y, params, extras


def critic_fn(params):
    # Not separable in a trivial way: tanh features, then a bilinear form.
    def critic(x_block, y):
        return jnp.tanh(x_block + params["b"]) @ params["w"] @ y.T

    return critic


def kwargs_for(bound, extras):
    names = {
        "tuba": ("log_baseline",),
        "smile": ("clip",),
        "conditional_infonce": ("conditions",),
        "interpolated": ("log_baseline", "alpha"),
        "mine": ("mine_state", "decay"),
    }
    return {name: extras[name] for name in names.get(bound, ())}


def value_and_state(out):
    """``(value, new MINE state)`` for mine, ``(value, ())`` for the other bounds."""
    return out if isinstance(out, tuple) else (out, ())


def dense(bound, params, x, y, extras):
    s = critic_fn(params)(x, y)
    if bound == "interpolated":
        return mi.interpolated(s, extras["log_baseline"], alpha=extras["alpha"])
    if bound == "mine":
        return mi.mine(s, extras["mine_state"], decay=extras["decay"])
    if bound == "tuba":
        return mi.tuba(s, extras["log_baseline"])
    if bound == "smile":
        return mi.smile(s, extras["clip"])
    if bound == "conditional_infonce":
        return mi.conditional_infonce(s, extras["conditions"])
    return getattr(mi, bound)(s)


def test_chunked_equals_dense():
    n = 23  # not a multiple of the chunk size: the last block is padded
    x, y, params, extras = data(n)

    @jax.jit
    def both(params):
        out = {}
        for bound in CRITIC_BOUNDS:
            kw = kwargs_for(bound, extras)

            def chunked(p, bound=bound, kw=kw):
                out = mi.from_critic(critic_fn(p), x, y, bound=bound, chunk_size=5, **kw)
                return value_and_state(out)

            def full(p, bound=bound):
                return value_and_state(dense(bound, p, x, y, extras))

            out[bound] = (
                jax.value_and_grad(chunked, has_aux=True)(params),
                jax.value_and_grad(full, has_aux=True)(params),
            )
        return out

    results = both(params)
    assert set(results) == set(CRITIC_BOUNDS)
    for bound, (((v_chunk, s_chunk), g_chunk), ((v_dense, s_dense), g_dense)) in results.items():
        np.testing.assert_allclose(v_chunk, v_dense, rtol=2e-5, atol=2e-5, err_msg=bound)
        for key in params:
            np.testing.assert_allclose(
                g_chunk[key], g_dense[key], rtol=2e-4, atol=2e-5, err_msg=bound
            )
        # mine's new moving average: the same state as the dense form.
        for got, want in zip(jax.tree.leaves(s_chunk), jax.tree.leaves(s_dense), strict=True):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5, err_msg=bound)


@pytest.mark.parametrize("bound", ["dv", "interpolated", "mine"])
def test_chunked_memory_is_linear_in_the_batch(bound):
    n, chunk = 64, 8
    x, y, params, extras = data(n)

    def loss(params):
        out = mi.from_critic(
            critic_fn(params), x, y, bound=bound, chunk_size=chunk, **kwargs_for(bound, extras)
        )
        return value_and_state(out)[0]

    text = str(jax.make_jaxpr(jax.value_and_grad(loss))(params))
    assert f"{chunk},{n}]" in text  # the blocks are there ...
    assert f"{n},{n}]" not in text  # ... and the full score matrix never is, nor its cotangent.
    dense_text = str(jax.make_jaxpr(lambda p: mi.dv(critic_fn(p)(x, y)))(params))
    assert f"{n},{n}]" in dense_text


def test_sharded_negatives_span_the_global_batch():
    n, chunk = 24, 4  # 6 rows per device, blocks of 4 (the last one padded)
    x, y, params, extras = data(n, seed=1)
    mesh = jax.make_mesh((4,), ("data",))
    batch, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    per_pair = {"log_baseline": extras["log_baseline"], "conditions": extras["conditions"]}
    shared = {k: extras[k] for k in ("clip", "alpha", "mine_state", "decay")}
    # tuba, interpolated and conditional_infonce also gather their per-pair arrays with y;
    # interpolated also combines column statistics across devices; mine returns its state.
    bounds = ("infonce", "tuba", "conditional_infonce", "interpolated", "mine")

    def sharded(params, x, y, per_pair):
        def local(params, x, y, per_pair):
            return {
                b: mi.from_critic(
                    critic_fn(params),
                    x,
                    y,
                    bound=b,
                    chunk_size=chunk,
                    axis_name="data",
                    **kwargs_for(b, {**per_pair, **shared}),
                )
                for b in bounds
            }

        specs = (P(), P("data"), P("data"), P("data"))
        return jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=P())(
            params, x, y, per_pair
        )

    @jax.jit
    def run(params, x, y, per_pair):
        return {
            b: jax.value_and_grad(
                lambda p, b=b: value_and_state(sharded(p, x, y, per_pair)[b]), has_aux=True
            )(params)
            for b in bounds
        }

    got = run(
        jax.device_put(params, replicated),
        jax.device_put(x, batch),
        jax.device_put(y, batch),
        jax.device_put(per_pair, batch),
    )
    expected = jax.jit(
        lambda p: {
            b: jax.value_and_grad(
                lambda p, b=b: value_and_state(dense(b, p, x, y, extras)), has_aux=True
            )(p)
            for b in bounds
        }
    )(params)
    for b in bounds:
        ((want, want_state), want_grads), ((value, state), grads) = expected[b], got[b]
        np.testing.assert_allclose(value, want, rtol=2e-5, atol=2e-5, err_msg=b)
        for key in params:
            np.testing.assert_allclose(grads[key], want_grads[key], rtol=2e-4, atol=2e-5)
        for a, w in zip(jax.tree.leaves(state), jax.tree.leaves(want_state), strict=True):
            np.testing.assert_allclose(a, w, rtol=2e-5, atol=2e-5, err_msg=b)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bound": "kl"}, "bound"),
        ({"bound": "interpolated", "alpha": 0.5}, "log_baseline"),
        ({"bound": "interpolated", "log_baseline": 0.0}, "alpha"),
        ({"bound": "interpolated", "log_baseline": 0.0, "alpha": 0.0}, "alpha"),
        ({"bound": "mine"}, "mine_state"),
        ({"bound": "mine", "mine_state": mi.mine_init(), "decay": 1.0}, "decay"),
        ({"bound": "tuba"}, "log_baseline"),
        ({"bound": "smile"}, "clip"),
        ({"bound": "smile", "clip": -1.0}, "clip"),
        ({"bound": "conditional_infonce"}, "conditions"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": 99}, "chunk_size"),
        ({"bound": "tuba", "log_baseline": np.zeros(3)}, "log_baseline"),
    ],
)
def test_bad_input_raises(kwargs, match):
    x, y, params, _ = data(8)
    with pytest.raises(ValueError, match=match):
        mi.from_critic(critic_fn(params), x, y, **kwargs)


def test_critic_with_wrong_orientation_is_caught():
    x, y, params, _ = data(8)
    with pytest.raises(ValueError, match="critic"):
        mi.from_critic(lambda a, b: (a @ b.T)[:, :4], x, y, chunk_size=4)
    with pytest.raises(ValueError, match="same number of pairs"):
        mi.from_critic(critic_fn(params), x, y[:5])
