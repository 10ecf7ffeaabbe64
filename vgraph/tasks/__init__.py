"""vgraph.tasks — one module per job: the loss for a step and the evaluation dict."""
from vgraph.tasks.linkpred import LinkPredTask

__all__ = ["LinkPredTask"]

from vgraph.tasks.molgen import MolGenTask  # noqa: E402
__all__ += ["MolGenTask"]
