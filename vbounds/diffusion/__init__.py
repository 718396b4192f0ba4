"""Variational bounds of diffusion models (``vb.diffusion``): Gaussian and discrete-state.

Pure functions of arrays and callables; imports jax and distrax only.
"""

from vbounds.diffusion._common import VLBTerms as VLBTerms
from vbounds.diffusion._common import categorical_kl as categorical_kl
from vbounds.diffusion.categorical import absorbing_betas as absorbing_betas
from vbounds.diffusion.categorical import absorbing_transitions as absorbing_transitions
from vbounds.diffusion.categorical import betas_from_alpha as betas_from_alpha
from vbounds.diffusion.categorical import categorical_decoder_nll as categorical_decoder_nll
from vbounds.diffusion.categorical import categorical_hybrid_loss as categorical_hybrid_loss
from vbounds.diffusion.categorical import categorical_posterior as categorical_posterior
from vbounds.diffusion.categorical import categorical_step_kl as categorical_step_kl
from vbounds.diffusion.categorical import categorical_vlb as categorical_vlb
from vbounds.diffusion.categorical import cumulative_transitions as cumulative_transitions
from vbounds.diffusion.categorical import gaussian_transitions as gaussian_transitions
from vbounds.diffusion.categorical import mdlm_diffusion_loss as mdlm_diffusion_loss
from vbounds.diffusion.categorical import mdlm_vlb as mdlm_vlb
from vbounds.diffusion.categorical import reverse_probs as reverse_probs
from vbounds.diffusion.categorical import udlm_diffusion_loss as udlm_diffusion_loss
from vbounds.diffusion.categorical import udlm_vlb as udlm_vlb
from vbounds.diffusion.categorical import uniform_transitions as uniform_transitions
from vbounds.diffusion.gaussian import bits_per_dim as bits_per_dim
from vbounds.diffusion.gaussian import decoder_nll as decoder_nll
from vbounds.diffusion.gaussian import denoising_loss as denoising_loss
from vbounds.diffusion.gaussian import diffusion_loss as diffusion_loss
from vbounds.diffusion.gaussian import gaussian_posterior as gaussian_posterior
from vbounds.diffusion.gaussian import gaussian_step_kl as gaussian_step_kl
from vbounds.diffusion.gaussian import gaussian_vlb as gaussian_vlb
from vbounds.diffusion.gaussian import hybrid_loss as hybrid_loss
from vbounds.diffusion.gaussian import interpolated_log_variance as interpolated_log_variance
from vbounds.diffusion.gaussian import l_simple as l_simple
from vbounds.diffusion.gaussian import prior_kl as prior_kl
from vbounds.diffusion.gaussian import shallow_gaussian_vlb as shallow_gaussian_vlb
from vbounds.diffusion.mulan import AuxiliaryVLBTerms as AuxiliaryVLBTerms
from vbounds.diffusion.mulan import auxiliary_kl as auxiliary_kl
from vbounds.diffusion.mulan import mulan_vlb as mulan_vlb
from vbounds.diffusion.schedules import cosine_gamma as cosine_gamma
from vbounds.diffusion.schedules import gamma_from_alpha_bar as gamma_from_alpha_bar
from vbounds.diffusion.schedules import init_monotone_gamma as init_monotone_gamma
from vbounds.diffusion.schedules import linear_gamma as linear_gamma
from vbounds.diffusion.schedules import monotone_gamma as monotone_gamma
from vbounds.diffusion.schedules import polynomial_gamma as polynomial_gamma
from vbounds.diffusion.weighting import ImportanceState as ImportanceState
from vbounds.diffusion.weighting import antithetic_times as antithetic_times
from vbounds.diffusion.weighting import debiased_weighting as debiased_weighting
from vbounds.diffusion.weighting import elbo_weighting as elbo_weighting
from vbounds.diffusion.weighting import importance_probabilities as importance_probabilities
from vbounds.diffusion.weighting import importance_times as importance_times
from vbounds.diffusion.weighting import init_importance_state as init_importance_state
from vbounds.diffusion.weighting import min_snr_weighting as min_snr_weighting
from vbounds.diffusion.weighting import sigmoid_weighting as sigmoid_weighting
from vbounds.diffusion.weighting import simple_weighting as simple_weighting
from vbounds.diffusion.weighting import stratified_times as stratified_times
from vbounds.diffusion.weighting import update_importance_state as update_importance_state
