"""Gradient variance of BBVI against the dimension: mean-field, full-rank and dense Gaussians.

A pure computation, not training: for each dimension ``d`` it builds a quadratic target
``log p(z) = -(z - z*)^T A (z - z*) / 2`` (``A`` with eigenvalues spread evenly over
[0.5, 2] in a random basis) and a Gaussian ``q`` with location ``z* + 0.5 e`` (``e`` a
random unit-variance vector) and scale ``0.5 I``, then

- the exact trace of the covariance and second moment of the reparameterisation gradient
  with respect to ``(loc, scale)`` (``vb.gradient_variance.quadratic_location_scale_moments``)
  for the ``mean_field``, ``full_rank`` (Cholesky) and ``dense`` scale parameterisations;
- the Monte Carlo trace of the covariance of ``vb.estimate``'s reparameterised ELBO gradient
  (``num_samples=1``, ``--draws`` gradient draws per seed, ``vb.gradient_variance.
  trace_covariance``) for the mean-field (``distrax.MultivariateNormalDiag``) and full-rank
  (``distrax.MultivariateNormalTri``) families, over ``--seeds`` seeds (mean and standard
  error over seeds).

Writes ``results.csv``, ``table.md`` and ``variance_vs_dimension.png`` to ``--out``::

    python -m experiments.gradient_variance --out=experiments/results/gradient_variance
"""

from __future__ import annotations

import argparse
import csv
import math
import os

import distrax
import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import vbounds as vb

gv = vb.gradient_variance

FAMILIES = {
    "mean_field": lambda p: distrax.MultivariateNormalDiag(p["loc"], p["scale"]),
    "full_rank": lambda p: distrax.MultivariateNormalTri(p["loc"], p["scale"]),
}


def problem(d: int):
    """The target's precision and mode and the family's location for dimension ``d``."""
    rng = np.random.default_rng(d)
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    precision = (basis * np.linspace(0.5, 2.0, d)) @ basis.T
    mode = rng.standard_normal(d)
    loc = mode + 0.5 * rng.standard_normal(d)
    return [jnp.asarray(a, jnp.float32) for a in (precision, mode, loc)]


def scale_of(parameterization: str, d: int) -> jax.Array:
    return 0.5 * (jnp.ones(d) if parameterization == "mean_field" else jnp.eye(d))


def monte_carlo_trace(family: str, d: int, seed: int, draws: int) -> float:
    precision, mode, loc = problem(d)
    params = {"loc": loc, "scale": scale_of(family, d)}

    def log_joint(z):
        r = z - mode
        return -0.5 * jnp.einsum("ki,ij,kj->k", r, precision, r)

    def grad_fn(key):
        def surrogate(p):
            return vb.estimate(key, log_joint, FAMILIES[family], p, num_samples=1, bound="elbo")

        return jax.grad(lambda p: surrogate(p).surrogate)(params)

    sample = jax.jit(
        lambda key: gv.trace_covariance(gv.gradient_draws(key, grad_fn, num_draws=draws))
    )
    return float(sample(jax.random.key(seed)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--dims", default="1,2,4,8,16,32,64,128")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--draws", type=int, default=2000)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    dims = [int(d) for d in args.dims.split(",")]
    rows = []
    for d in dims:
        precision, mode, loc = problem(d)
        for parameterization in gv.PARAMETERIZATIONS:
            exact = gv.quadratic_location_scale_moments(
                precision,
                mode,
                loc,
                scale_of(parameterization, d),
                parameterization=parameterization,
            )
            row = {
                "d": d,
                "parameterization": parameterization,
                "exact_trace_covariance": float(exact.trace_covariance),
                "exact_expected_squared_norm": float(exact.expected_squared_norm),
                "mc_trace_covariance": math.nan,
                "mc_se": math.nan,
            }
            if parameterization in FAMILIES:
                values = [
                    monte_carlo_trace(parameterization, d, seed, args.draws)
                    for seed in range(args.seeds)
                ]
                row["mc_trace_covariance"] = float(np.mean(values))
                row["mc_se"] = float(np.std(values, ddof=1) / math.sqrt(len(values)))
            rows.append(row)
            print(row, flush=True)
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "| d | family | exact tr Cov | Monte Carlo tr Cov (mean +- s.e.) | exact E norm^2 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        mc = (
            "-"
            if math.isnan(r["mc_trace_covariance"])
            else f"{r['mc_trace_covariance']:.4g} +- {r['mc_se']:.2g}"
        )
        lines.append(
            f"| {r['d']} | {r['parameterization']} | {r['exact_trace_covariance']:.4g} | {mc} "
            f"| {r['exact_expected_squared_norm']:.4g} |"
        )
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    for i, parameterization in enumerate(gv.PARAMETERIZATIONS):
        series = [r for r in rows if r["parameterization"] == parameterization]
        ds = [r["d"] for r in series]
        ax.plot(
            ds,
            [r["exact_trace_covariance"] / r["d"] for r in series],
            "-",
            color=f"C{i}",
            label=f"{parameterization} (exact)",
        )
        if parameterization in FAMILIES:
            ax.errorbar(
                ds,
                [r["mc_trace_covariance"] / r["d"] for r in series],
                yerr=[r["mc_se"] / r["d"] for r in series],
                fmt="o",
                color=f"C{i}",
                ms=4,
                capsize=2,
                label=f"{parameterization} (vb.estimate, Monte Carlo)",
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("dimension d")
    ax.set_ylabel("tr Cov[g] / d")
    ax.set_title("Reparameterisation gradient variance per dimension, quadratic target")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "variance_vs_dimension.png"), dpi=100)


if __name__ == "__main__":
    main()
