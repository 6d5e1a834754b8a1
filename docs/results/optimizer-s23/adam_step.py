"""One Adam step over MDR-CHCA's parameters on ML-100K tokens (after one training epoch, random gradients) with each
of torch's three kernels, alternated 30 times in one process, one thread: the median milliseconds a step (a
throwaway kept beside its output).

    python docs/results/optimizer-s23/adam_step.py
"""

import statistics
import sys
import time

import torch

sys.path.insert(0, "benchmarks")
from bench_epoch_cost import cpu_trainer  # noqa: E402
from mdrchca.data import load_dataset  # noqa: E402

torch.set_num_threads(1)
trainer = cpu_trainer("mdrchca", load_dataset("data/ml100k-64"), "epochs=3")
trainer.epoch = 1
trainer.train_epoch()
params = [p for p in trainer.model.parameters() if p.requires_grad]
for p in params:
    p.grad = torch.randn_like(p)
print(f"{len(params)} parameter tensors, {sum(p.numel() for p in params)} numbers")
kernels = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
optimizers = {name: torch.optim.Adam(params, lr=1e-3, **kw) for name, kw in kernels.items()}
for optimizer in optimizers.values():
    optimizer.step()
seconds = {name: [] for name in optimizers}
for _ in range(30):
    for name, optimizer in optimizers.items():
        start = time.perf_counter()
        optimizer.step()
        seconds[name].append(time.perf_counter() - start)
print({name: f"{statistics.median(s) * 1e3:.3f} ms" for name, s in seconds.items()})
