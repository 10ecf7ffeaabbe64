"""Backend dispatch for the raw CSR kernels: which implementation runs ``A @ X``.

Paths of an SpMM (``csr_mm``):

* ``numba``: vgraph's compiled row-split kernel (:mod:`vgraph.ops.cpu_kernels`), CPU;
* ``mkl``: ``torch.sparse.mm`` on the cached CSR (MKL on CPU, cuSPARSE on CUDA);
* ``native``: ``torch.sparse.mm(A, X, reduce="sum")``, torch's own CSR kernel;
* ``dense``: one GEMM with the matrix densified once and cached (graphs a tenth dense,
  such as ogbl-ddi, where BLAS's FLOP rate beats any gather);
* ``triton``: the Triton kernel (:mod:`vgraph.ops.triton_kernels`), CUDA or interpreter.

The automatic rule is the table ``CPU_RULES`` / ``CUDA_RULES``: the first row whose
condition holds picks the path. The one CPU-dependent threshold (density above which the
dense GEMM wins) comes from :func:`cpu_profile`, a micro-probe of a few ms run on first
use and cached in ``$VGRAPH_CACHE/ops/`` per CPU model, thread count and library
versions. ``VGRAPH_BACKEND`` forces a path for every call: one of ``PATHS``, or ``torch``
(the old name of ``mkl``). Forcing ``triton`` on CPU tensors needs ``TRITON_INTERPRET=1``;
forcing a path that cannot run raises instead of silently falling back.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import time

import torch

TRITON_MIN_F = 16
DENSE_MIN_F = 32  # narrower GEMMs run far below BLAS's peak rate
DENSE_MAX_BYTES = 512 * 2**20  # the cached dense matrix may hold at most this much
DENSE_MARGIN = 1.25  # dense must be predicted this much faster than numba (probe noise)
DENSE_MIN_DENSITY = 0.05  # floor under the probe: a GEMM does 1/density times the work, and
# BLAS is ~5x faster per multiply-add than the sparse kernel (issue 16: 140 GFLOP/s GEMM vs
# native's 29 on ogbl-ddi), so below 5 % dense cannot win; a probe taken under load can
# claim otherwise (seen: Cora's 1.3 %-dense features went dense and moved digits)
NATIVE_MIN_F = 128  # without numba: torch-native beats MKL from here (docs/performance.md)
PATHS = ("numba", "mkl", "native", "dense", "triton")
BACKENDS = PATHS + ("torch",)
PROBE_VERSION = 1

_PROFILES: dict = {}  # torch thread count -> probe of this process
_OVERRIDE: str | None = None


@contextlib.contextmanager
def force(path: str | None):
    """Run the block with ``path`` forced, as ``VGRAPH_BACKEND`` would (``None``: the rule)."""
    global _OVERRIDE
    if path is not None and path not in BACKENDS + ("auto",):
        raise ValueError(f"backend must be one of {BACKENDS}, got {path!r}")
    before, _OVERRIDE = _OVERRIDE, path
    try:
        yield
    finally:
        _OVERRIDE = before


def _forced() -> str | None:
    if _OVERRIDE is not None:
        return None if _OVERRIDE == "auto" else ("mkl" if _OVERRIDE == "torch" else _OVERRIDE)
    forced = os.environ.get("VGRAPH_BACKEND") or None
    if forced is not None and forced not in BACKENDS:
        raise ValueError(f"VGRAPH_BACKEND must be one of {BACKENDS}, got {forced!r}")
    return "mkl" if forced == "torch" else forced


def _triton_available(device: torch.device | None = None) -> bool:
    try:
        from vgraph.ops import triton_kernels
    except Exception:
        return False
    return triton_kernels.available(device)


def _numba_available() -> bool:
    from vgraph.ops import cpu_kernels
    return cpu_kernels.available()  # tries the import once, then remembers


def choose(device: torch.device, num_features: int) -> str:
    """``"triton"`` or ``"torch"`` (anything else) for the pair and segment kernels."""
    forced = _forced()
    if forced == "triton":
        if not _triton_available(device):
            raise RuntimeError(
                f"VGRAPH_BACKEND=triton but Triton cannot run on {device} "
                "(CUDA tensors need Triton and a GPU; CPU tensors need TRITON_INTERPRET=1)")
        return "triton"
    if forced is None and device.type == "cuda" and num_features >= TRITON_MIN_F \
            and _triton_available(device):
        return "triton"
    return "torch"


def use_numba(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the compiled CPU kernels serve a pair / segment call (unless forced away)."""
    forced = _forced()
    ok = device.type == "cpu" and dtype in (torch.float32, torch.float64)
    if forced == "numba":
        if not ok or not _numba_available():
            raise RuntimeError(f"VGRAPH_BACKEND=numba needs float CPU tensors and numba ({device}, {dtype})")
        return True
    return forced is None and ok and _numba_available()


# ------------------------------------------------------------------ the rule table
def _dense_ok(c) -> bool:
    return (c["F"] >= DENSE_MIN_F and c["dense_bytes"] <= DENSE_MAX_BYTES
            and c["density"] >= DENSE_MIN_DENSITY and c["density"] >= c["dense_density"]())


CPU_RULES = (  # (path, condition on the call); the first that holds wins
    ("mkl", lambda c: c["dtype"] not in (torch.float32, torch.float64)),
    ("dense", lambda c: c["numba"]() and _dense_ok(c)),
    ("numba", lambda c: c["numba"]()),
    ("native", lambda c: c["F"] >= NATIVE_MIN_F),
    ("mkl", lambda c: True),
)
CUDA_RULES = (
    ("triton", lambda c: c["F"] >= TRITON_MIN_F and _triton_available(c["device"])),
    ("mkl", lambda c: True),
)


def spmm_path(mat, num_features: int, device: torch.device, dtype=torch.float32) -> str:
    """The path ``csr_mm`` takes for ``mat @ X`` with ``X [cols, num_features]``."""
    forced = _forced()
    if forced is not None:
        _check_forced(forced, device, dtype)
        return forced
    memo = mat.__dict__.setdefault("_paths", {})  # the rule is pure: decide once per matrix
    key = (int(num_features), dtype, device.type, torch.get_num_threads())
    if key not in memo:
        memo[key] = _decide(mat, int(num_features), device, dtype)
    return memo[key]


def _decide(mat, num_features: int, device, dtype) -> str:
    rows, cols = mat.shape
    nnz = int(mat.indices.numel())
    ctx = {"rows": rows, "nnz": nnz, "F": int(num_features), "device": device, "dtype": dtype,
           "density": nnz / max(1, rows * cols), "dense_bytes": rows * cols * 4,
           "numba": _numba_available, "dense_density": lambda: cpu_profile()["dense_density"]}
    for path, cond in (CUDA_RULES if device.type == "cuda" else CPU_RULES):
        if cond(ctx):
            return path
    raise AssertionError("the rule table ends with a catch-all")  # pragma: no cover


def _check_forced(path: str, device, dtype):
    if path == "triton" and not _triton_available(device):
        raise RuntimeError(
            f"VGRAPH_BACKEND=triton but Triton cannot run on {device} "
            "(CUDA tensors need Triton and a GPU; CPU tensors need TRITON_INTERPRET=1)")
    if path == "numba" and (device.type != "cpu" or dtype not in (torch.float32, torch.float64)
                            or not _numba_available()):
        raise RuntimeError(f"VGRAPH_BACKEND=numba needs float CPU tensors and numba ({device}, {dtype})")


# ---------------------------------------------------------------------- the probe
def _cpuinfo_field(name: str) -> str | None:
    """The first ``name : value`` line of ``/proc/cpuinfo`` (``None`` where there is none)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the machine type."""
    return _cpuinfo_field("model name") or platform.machine()


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> str:
    have = set((_cpuinfo_field("flags") or "").split())
    return "+".join(f for f in ("avx2", "avx512f", "amx_tile") if f in have)


def _cpu_key() -> str:
    import numba
    return (f"v{PROBE_VERSION} {cpu_name()} [{_cpu_flags()}] threads={torch.get_num_threads()} "
            f"torch={torch.__version__} numba={numba.__version__}")


def _best(fns, repeats: int = 7) -> list[float]:
    """Fastest of ``repeats`` runs of each function, taken in alternation (the same load)."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def measure_profile() -> dict:
    """Time a GEMM and the numba SpMM on cache-resident inputs (~10 ms in all).

    ``dense_density`` is where a dense GEMM (``2 R C F`` flops at the GEMM rate) costs
    ``1 / DENSE_MARGIN`` of the sparse kernel (``nnz F`` multiply-adds at its rate).
    """
    from vgraph.ops import cpu_kernels
    from vgraph.ops.graph import SparseMatrix
    g = torch.Generator().manual_seed(0)
    n, f, per_row = 1024, 128, 64
    a, x = torch.randn(n, n, generator=g), torch.randn(n, f, generator=g)
    cols = torch.randint(0, n, (n * per_row,), generator=g).view(n, per_row).sort(1).values.reshape(-1)
    mat = SparseMatrix(torch.arange(0, n * per_row + 1, per_row), cols, torch.rand(n * per_row, generator=g), n, n)
    gemm_s, spmm_s = _best([lambda: torch.mm(a, x), lambda: cpu_kernels.csr_spmm(mat, x)])
    gemm_rate = 2 * n * n * f / gemm_s  # flop/s
    spmm_rate = n * per_row * f / spmm_s  # non-zero x column products / s
    return {"gemm_gflops": round(gemm_rate / 1e9, 2), "spmm_gnzf": round(spmm_rate / 1e9, 3),
            "dense_density": round(min(1.0, DENSE_MARGIN * 2 * spmm_rate / gemm_rate), 4)}


def cpu_profile(refresh: bool = False) -> dict:
    """The probe for this CPU and thread count: measured once, then read from the cache."""
    threads = torch.get_num_threads()
    if threads in _PROFILES and not refresh:
        return _PROFILES[threads]
    key = _cpu_key()
    from vgraph.paths import cache_dir
    path = cache_dir("ops") / "cpu_probe.json"
    table = {}
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    if refresh or key not in table:
        table[key] = measure_profile()
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, indent=1))
        os.replace(tmp, path)
    _PROFILES[threads] = dict(table[key], key=key)
    return _PROFILES[threads]


# -------------------------------------------------------------------- the kernels
def _int32_index(mat):
    """``(indptr, indices)`` of a ``SparseMatrix`` as int32, converted once and cached."""
    cached = getattr(mat, "_i32", None)
    if cached is None or cached[0].device != mat.indptr.device:
        cached = (mat.indptr.to(torch.int32), mat.indices.to(torch.int32))
        mat._i32 = cached
    return cached


def dense_of(mat) -> torch.Tensor:
    """``mat`` as a dense fp32 tensor, built once (the transpose reuses it as a view)."""
    cached = mat.__dict__.get("_dense")
    if cached is None:
        other = mat._t.__dict__.get("_dense") if mat._t is not None else None
        if other is not None:
            cached = other.t()
        else:
            rows = torch.repeat_interleave(torch.arange(mat.shape[0], device=mat.indptr.device),
                                           mat.indptr[1:] - mat.indptr[:-1])
            cached = torch.zeros(mat.shape, dtype=torch.float32, device=mat.indptr.device)
            cached.index_put_((rows, mat.indices), mat.values.float(), accumulate=True)
        mat._dense = cached
    return cached


def csr_mm(mat, x: torch.Tensor) -> torch.Tensor:
    """Raw ``A @ x`` for a ``SparseMatrix`` (no autograd)."""
    if mat.indices.numel() == 0 or x.size(1) == 0:
        return x.new_zeros(mat.shape[0], x.size(1))
    path = spmm_path(mat, x.size(1), x.device, x.dtype)
    if path == "numba":
        from vgraph.ops import cpu_kernels
        return cpu_kernels.csr_spmm(mat, x)
    if path == "dense":
        d = dense_of(mat)
        return torch.mm(d if d.dtype == x.dtype else d.to(x.dtype), x)
    if path == "native":
        return torch.sparse.mm(mat.csr, x, reduce="sum")
    if path == "triton":
        from vgraph.ops import triton_kernels
        indptr, indices = _int32_index(mat)
        return triton_kernels.csr_spmm(indptr, indices, mat.values, x)
    return torch.sparse.mm(mat.csr, x)
