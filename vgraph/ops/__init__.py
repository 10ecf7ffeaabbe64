"""vgraph.ops — the sparse kernels every model shares (pure functions, no parameters)."""
import warnings

# torch marks CSR support "beta" and warns once per process; vgraph validates its own CSR.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

from vgraph.ops.graph import SparseGraph, SparseMatrix, check_edge_index, node_ordering
from vgraph.ops.spmm import spmm, neighbor_reduce
from vgraph.ops.sddmm import sddmm, pair_product
from vgraph.ops.random import dropout
from vgraph.ops.segment import (segment, segment_csr, segment_sum_csr, segment_mean_csr,
                                segment_max_csr, index_to_indptr, concat_ranges)

__all__ = ["SparseGraph", "SparseMatrix", "check_edge_index", "node_ordering", "spmm",
           "neighbor_reduce", "sddmm", "pair_product", "dropout", "segment", "segment_csr", "segment_sum_csr",
           "segment_mean_csr", "segment_max_csr", "index_to_indptr", "concat_ranges"]
