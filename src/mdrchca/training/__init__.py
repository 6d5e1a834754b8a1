"""The shared trainer, checkpoints and reproducibility helpers."""

from mdrchca.training.trainer import Trainer, TrainResult, build_model

__all__ = ["TrainResult", "Trainer", "build_model"]
