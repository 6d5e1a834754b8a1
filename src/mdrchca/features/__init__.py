"""Feature extraction: token-level text and region-level image features from a raw catalogue."""

from mdrchca.features.extract import FeatureConfig, extract_features

__all__ = ["FeatureConfig", "extract_features"]
