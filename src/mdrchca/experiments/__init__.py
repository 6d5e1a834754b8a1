"""Experiments over grids of run folders: tuning, comparison tables with paired tests, sweeps, ablations,
robustness to feature noise, probes of a trained model, audits, explanations and the HTML report."""
