"""The names every docstring example of the core assumes (run by ``--doctest-modules``).

The examples start from ``import distrax, jax, jax.numpy as jnp, numpy as np`` and
``import vbounds as vb`` (``vd = vb.diffusion``), as the documentation's pages do.
"""

import pytest


@pytest.fixture(scope="session", autouse=True)
def _doctest_names(doctest_namespace):
    import distrax
    import jax
    import jax.numpy as jnp
    import numpy as np

    import vbounds as vb

    doctest_namespace.update(distrax=distrax, jax=jax, jnp=jnp, np=np, vb=vb, vd=vb.diffusion)
