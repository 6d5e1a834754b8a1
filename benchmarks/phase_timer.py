"""Where a training epoch's seconds go: the trainer's step phases timed by wrapping them (no profiler overhead).

Used by ``bench_distributed.py --profile-dir`` and ``bench_epoch_cost.py --phases``.
"""

from __future__ import annotations

import time
from typing import Any

STEP_PARTS = ("forward", "sum_gradients", "broadcast_buffers", "optimizer", "after_step")
"""The phases inside ``Trainer.step`` that are wrapped; the backward (with the collectives its autograd functions
run) is what is left of the step."""


def _wrap(owner: Any, name: str, label: str, seconds: dict[str, float]) -> None:
    inner = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - start

    setattr(owner, name, timed)


def timed_phases(trainer: Any, seconds: dict[str, float]) -> None:
    """Wrap ``trainer``'s phases so that each adds its wall seconds to ``seconds``: the epoch start
    (MDR-CHCA's cache refresh), the step, and inside it the forward (``_step_module``), the gradient sums and
    buffer broadcasts of ``parallel=columns``, the optimiser step and ``after_step``; within the forward,
    MDR-CHCA's content branch (``forward.content``, which also counts the content computed at the epoch start and
    in evaluation), propagation (``forward.propagate``) and L_conf (``forward.contrastive_loss``); and evaluation
    (``evaluate``)."""
    _wrap(trainer.model, "on_epoch_start", "epoch_start", seconds)
    _wrap(trainer, "step", "step", seconds)
    _wrap(trainer, "_step_module", "forward", seconds)
    _wrap(trainer, "_sum_shared_gradients", "sum_gradients", seconds)
    _wrap(trainer, "_broadcast_buffers", "broadcast_buffers", seconds)
    _wrap(trainer.optimizer, "step", "optimizer", seconds)
    _wrap(trainer.model, "after_step", "after_step", seconds)
    _wrap(trainer, "evaluate", "evaluate", seconds)
    for name in ("content", "_propagate", "contrastive_loss"):  # MDR-CHCA's parts
        if hasattr(trainer.model, name):
            _wrap(trainer.model, name, f"forward.{name.strip('_')}", seconds)


def with_backward(seconds: dict[str, float]) -> dict[str, float]:
    """``seconds`` rounded to ms, with ``backward_and_rest_of_step``: the step less its wrapped parts."""
    out = dict(seconds)
    if "step" in out:
        out["backward_and_rest_of_step"] = out["step"] - sum(out.get(k, 0.0) for k in STEP_PARTS)
    return {k: round(v, 3) for k, v in out.items()}
