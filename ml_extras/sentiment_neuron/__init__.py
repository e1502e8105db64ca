"""Radford et al. 2017, "Learning to Generate Reviews and Discovering Sentiment", at small scale.

A byte-level multiplicative LSTM learns to predict the next byte of unlabelled text; a linear
probe on its final state then classifies Rotten Tomatoes snippets as fresh or rotten.
"""

from __future__ import annotations
