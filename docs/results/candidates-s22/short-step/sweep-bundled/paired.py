"""The paired t-test over seeds of the training_pass sweep (results.csv beside this file), validation and test R@20.

    cd docs/results/candidates-s22/short-step/sweep-bundled && python paired.py > paired.txt
"""

from pathlib import Path

import pandas as pd
from scipy import stats

runs = pd.read_csv(Path(__file__).with_name("results.csv"))
for split in ("valid", "test"):
    full, short = (
        runs[runs.value == route].sort_values("seed")[f"{split} recall@20"].to_numpy() for route in ("full", "short")
    )
    p = stats.ttest_rel(full, short).pvalue
    print(
        f"{split} R@20: full {full.round(4).tolist()} mean {full.mean():.4f}; short {short.round(4).tolist()} "
        f"mean {short.mean():.4f}; paired t-test p = {p:.2f}"
    )
