"""vgraph.tasks — one module per job: the loss for a step and the evaluation dict."""
from vgraph.tasks.linkpred import LinkPredTask, ShardedLinkPredTask, MiniBatchLinkPredTask

__all__ = ["LinkPredTask", "ShardedLinkPredTask", "MiniBatchLinkPredTask"]
