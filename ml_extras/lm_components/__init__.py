"""Large-LM components (Jozefowicz et al. 2016): char-CNN word inputs, LSTM with projection,
importance-sampled softmax, compared on PTB at equal steps."""

from __future__ import annotations

from ml_extras.lm_components.char_cnn import CharCNNWordEncoder
from ml_extras.lm_components.lstmp import LSTMP, lstmp_reference
from ml_extras.lm_components.model import WordLM
from ml_extras.lm_components.sampled_softmax import SampledSoftmax, importance_partition_estimate

__all__ = ["LSTMP", "CharCNNWordEncoder", "SampledSoftmax", "WordLM", "importance_partition_estimate",
           "lstmp_reference"]
