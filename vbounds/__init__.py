"""vbounds: variational bounds and their gradient estimators, in JAX.

The core (this namespace, ``vb.mi`` and ``vb.diffusion``) imports jax, numpy and distrax
only. The research framework (models, objectives, training, experiments) is the separate
subpackage ``vbounds.lab`` (``pip install "vbounds[lab]"``), imported explicitly.

The families beyond the marginal likelihood (``vb.eig``, ``vb.gp``, ``vb.sequential``, ...)
are submodules imported on first access, so ``import vbounds`` stays quick.
"""

import importlib as _importlib

from vbounds import diffusion
from vbounds import mi
from vbounds.bounds import elbo
from vbounds.bounds import iwae
from vbounds.bounds import kl_divergence
from vbounds.bounds import renyi
from vbounds.bounds import vod
from vbounds.bounds import vr_max
from vbounds.bounds import weighted_elbo
from vbounds.checking import checked
from vbounds.estimators import Estimate
from vbounds.estimators import estimate
from vbounds.estimators import rws_wake_phi
from vbounds.evaluation import default_chunk_size
from vbounds.evaluation import effective_sample_size
from vbounds.evaluation import gradient_snr
from vbounds.evaluation import log_likelihood
from vbounds.evaluation import pareto_k_hat

__version__ = "0.1.0"

# Core submodules imported on first attribute access (``vb.gp`` imports vbounds.gp).
_LAZY_SUBMODULES = (
    "disentangle",
    "eig",
    "flow",
    "free_energy",
    "gp",
    "gradient_variance",
    "implicit",
    "linear_gaussian",
    "multimodal",
    "pac_bayes",
    "sde",
    "sequential",
    "spike_slab",
    "svgd",
    "weight_space",
)


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        module = _importlib.import_module(f"vbounds.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'vbounds' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))
