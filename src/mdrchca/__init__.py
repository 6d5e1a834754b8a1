"""mdrchca: MDR-CHCA multimodal denoising recommendation, its baselines, and MMRec-compatible evaluation."""

from mdrchca.errors import ConfigError, DataError, MdrchcaError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "MdrchcaError", "__version__"]
