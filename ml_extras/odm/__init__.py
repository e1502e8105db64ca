"""Output distribution matching (Sutskever et al. 2015): unsupervised cost from the label distribution."""
