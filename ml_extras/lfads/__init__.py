"""LFADS (Sussillo, Pandarinath et al. 2016), small-scale reproduction.

Files: ``data.py`` (the paper's synthetic chaotic-RNN spiking data), ``model.py`` (the sequential
VAE), ``baselines.py`` (Gaussian smoothing, factor analysis, R^2), ``joint_states.py`` (turns
recorded JointState-like sequences into LFADS input), ``train.py``, ``__main__.py`` (CLI).
"""

from __future__ import annotations

from ml_extras.lfads.data import ChaoticRNNData, generate_chaotic_rnn_data
from ml_extras.lfads.joint_states import JointStateTensor, joint_states_to_lfads
from ml_extras.lfads.model import LFADS, LFADSConfig

__all__ = ["ChaoticRNNData", "generate_chaotic_rnn_data", "JointStateTensor", "joint_states_to_lfads",
           "LFADS", "LFADSConfig"]
