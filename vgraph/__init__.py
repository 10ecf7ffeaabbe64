"""vgraph — graph-focused variational learning on PyTorch and PyTorch Geometric."""
__version__ = "0.1.0"


def load(path, **kwargs):
    """Rebuild a model saved by :func:`vgraph.hub.save_model` (see :func:`vgraph.hub.load`)."""
    from vgraph.hub import load as _load
    return _load(path, **kwargs)
