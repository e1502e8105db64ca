"""Inverse autoregressive flow VAE (Kingma et al. 2016), small-scale reproduction.

Files: ``made.py`` (masked autoencoder + IAF step/flow), ``model.py`` (VAE with a diagonal or
IAF posterior, ELBO and importance-weighted bounds), ``data.py`` (binarized digits/MNIST/
Fashion-MNIST, cube renders), ``density.py`` (2-D reverse-KL fits), ``train.py`` (experiments),
``__main__.py`` (CLI: ``python -m ml_extras.iaf --quick``).
"""

from __future__ import annotations

from ml_extras.iaf.made import MADE, IAFFlow, IAFStep, MaskedLinear
from ml_extras.iaf.model import VAE, DiagonalGaussianPosterior, IAFPosterior

__all__ = ["MADE", "IAFFlow", "IAFStep", "MaskedLinear", "VAE", "DiagonalGaussianPosterior", "IAFPosterior"]
