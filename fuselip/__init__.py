"""fuselip: a teaching suite for FuseLIP, the early-fusion multimodal embedding model (arXiv 2506.03096)."""
from fuselip.checkpoint import load_model, save_model

__version__ = "0.1.0"
__all__ = ["load_model", "save_model", "__version__"]
