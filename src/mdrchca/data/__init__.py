"""Data layer: MMRec dataset folders, splits, graphs, samplers and the bundled synthetic catalogue."""

from mdrchca.data.dataset import RecDataset, load_dataset
from mdrchca.data.features import ModalityFeatures
from mdrchca.data.sampler import BPRSampler

__all__ = ["BPRSampler", "ModalityFeatures", "RecDataset", "load_dataset"]
