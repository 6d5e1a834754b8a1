"""Experiments: result tables over run folders (and, later, sweeps and ablations)."""
