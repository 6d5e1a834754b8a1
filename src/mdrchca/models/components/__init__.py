"""Pieces several models share: LightGCN propagation, item kNN graphs, latent item graphs, contrastive objectives."""
