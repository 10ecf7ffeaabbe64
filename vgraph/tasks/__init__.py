"""vgraph.tasks — one module per job: the loss for a step and the evaluation dict."""
from vgraph.tasks.linkpred import LinkPredTask
from vgraph.tasks.molgen import MolGenTask

__all__ = ["LinkPredTask", "MolGenTask"]
