"""vgraph.tasks — one module per job: the loss for a step and the evaluation dict."""
from vgraph.tasks.linkpred import LinkPredTask

__all__ = ["LinkPredTask"]

from vgraph.tasks.drugbank import DrugBankTask  # noqa: E402
from vgraph.tasks.ogbl_ddi import OgblDDITask  # noqa: E402
__all__ += ["DrugBankTask", "OgblDDITask"]
