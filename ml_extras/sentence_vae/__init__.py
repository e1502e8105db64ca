"""Sentence VAE (Bowman et al. 2015): LSTM encoder/decoder VAE with KL annealing and word dropout on PTB."""

from __future__ import annotations

from ml_extras.sentence_vae.model import LSTMLanguageModel, SentenceVAE
from ml_extras.sentence_vae.schedules import KLAnnealing, word_dropout

__all__ = ["KLAnnealing", "LSTMLanguageModel", "SentenceVAE", "word_dropout"]
