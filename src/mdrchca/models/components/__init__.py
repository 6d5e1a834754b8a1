"""Pieces several models share: item kNN graphs, latent item graphs, contrastive objectives."""
