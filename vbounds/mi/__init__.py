"""Bounds and estimators of mutual information (``vb.mi``).

Score-matrix convention: ``scores[i, j] = f(x_i, y_j)`` for a batch of N pairs, joint
pairs on the diagonal, marginal terms over the off-diagonal entries; one scalar in nats.
"""

from vbounds.mi.contrastive import MineState as MineState
from vbounds.mi.contrastive import conditional_infonce as conditional_infonce
from vbounds.mi.contrastive import dv as dv
from vbounds.mi.contrastive import infonce as infonce
from vbounds.mi.contrastive import interpolated as interpolated
from vbounds.mi.contrastive import js as js
from vbounds.mi.contrastive import js_mi as js_mi
from vbounds.mi.contrastive import mine as mine
from vbounds.mi.contrastive import mine_init as mine_init
from vbounds.mi.contrastive import nwj as nwj
from vbounds.mi.contrastive import smile as smile
from vbounds.mi.contrastive import smile_surrogate as smile_surrogate
from vbounds.mi.contrastive import tuba as tuba
from vbounds.mi.divergence import classifier_js_distance as classifier_js_distance
from vbounds.mi.divergence import classifier_js_divergence as classifier_js_divergence
from vbounds.mi.scalable import from_critic as from_critic
from vbounds.mi.variational import barber_agakov as barber_agakov
from vbounds.mi.variational import club as club
from vbounds.mi.variational import club_sampled as club_sampled
from vbounds.mi.variational import kl_rate as kl_rate
from vbounds.mi.variational import vib_loss as vib_loss
