"""vbounds: variational bounds and their gradient estimators, in JAX.

The core (this namespace, ``vb.mi`` and ``vb.diffusion``) imports jax, numpy and distrax
only. The research framework (models, objectives, training, experiments) is the separate
subpackage ``vbounds.lab`` (``pip install "vbounds[lab]"``), imported explicitly.
"""

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
