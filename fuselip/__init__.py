"""fuselip: a teaching suite for FuseLIP, the early-fusion multimodal embedding model (arXiv 2506.03096)."""
from fuselip.checkpoint import load_model, save_model

__version__ = "0.1.0"
__all__ = ["load_model", "save_model", "load_pretrained", "__version__"]


def __getattr__(name: str):
    """`fuselip.load_pretrained` (the released models, fuselip/pretrained.py), imported on first use."""
    if name == "load_pretrained":
        from fuselip.pretrained import load_pretrained
        return load_pretrained
    raise AttributeError(f"module 'fuselip' has no attribute {name!r}")
