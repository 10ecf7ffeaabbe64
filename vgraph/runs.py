"""The one run harness every job uses: validated common flags, the seed loop, summaries.

A job (``vgraph <job>`` / ``scripts/<job>.py``) is argparse plus calls into the library:

* :func:`job_parser` — an ``ArgumentParser`` that shows defaults in ``--help`` and reports
  a bad flag as one line (``vgraph linkpred: error: --epochs must be >= 1, got 0``), exit 2;
* :func:`add_common_args` — ``--seed --runs --device --out --root --threads --resume
  --overwrite --no-progress --no-plot``, each validated at the command line;
* :func:`add_kl_args` / :func:`kl_from_args` — the KL knobs of every variational model;
* :func:`prepare_out` — refuse to rerun into a folder that holds a run unless ``--resume``
  (continue it) or ``--overwrite`` (start it afresh);
* :func:`run_seeds` — run ``one_run`` for each seed, print a line per run and the mean ± std,
  write ``summary.json`` (metrics, per-run values, config, command, versions, timing) and
  ``curves.png``;
* :func:`job_entry` — turn a :class:`~vgraph.errors.VGraphError` (bad file, id, SMILES,
  checkpoint) into one ``error: ...`` line and exit 1, never a traceback.
"""
from __future__ import annotations

import argparse
import functools
import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

from vgraph.errors import VGraphError
from vgraph.train.checkpoint import atomic_write_bytes


# ------------------------------------------------------------------ flags
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keep the description's line breaks and show every default."""


class JobParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def job_parser(prog: str | None = None, description: str | None = None) -> JobParser:
    """A parser for a job: defaults shown in ``--help``, one-line errors."""
    return JobParser(prog=prog, description=description, formatter_class=_HelpFormatter)


def bounded(kind=float, lo=None, hi=None, lo_open=False, hi_open=False):
    """An argparse ``type`` that parses ``kind`` and checks ``lo <(=) value <(=) hi``."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        if kind is float and value != value:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
        if lo is not None and (value <= lo if lo_open else value < lo):
            raise argparse.ArgumentTypeError(f"must be {'>' if lo_open else '>='} {lo}, got {text}")
        if hi is not None and (value >= hi if hi_open else value > hi):
            raise argparse.ArgumentTypeError(f"must be {'<' if hi_open else '<='} {hi}, got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = bounded(int, lo=1)
nonneg_int = bounded(int, lo=0)
positive_float = bounded(float, lo=0, lo_open=True)
nonneg_float = bounded(float, lo=0)
unit_interval = bounded(float, lo=0, hi=1)                    # [0, 1]
open_fraction = bounded(float, lo=0, hi=1, lo_open=True, hi_open=True)  # (0, 1)
dropout_rate = bounded(float, lo=0, hi=1, hi_open=True)       # [0, 1)


def device_arg(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` (checked against the machine in :func:`setup_runtime`)."""
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r} (use cpu, cuda or cuda:N)") from None
    if dev.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"unsupported device {text!r} (use cpu, cuda or cuda:N)")
    return text


def add_common_args(parser: argparse.ArgumentParser, default_out: str, *, runs: bool = True,
                    resume: bool = False, plot: bool = False):
    """``--seed --runs --device --out --root --threads --resume --overwrite --no-progress
    --no-plot`` as every job has them (``runs=False`` drops ``--runs``; ``resume=True`` adds
    ``--resume --overwrite``, ``plot=True`` adds ``--no-plot``, for jobs that honour them: no
    flag is accepted and ignored)."""
    parser.add_argument("--seed", type=int, default=0, help="base seed; run r uses seed + r")
    if runs:
        parser.add_argument("--runs", type=positive_int, default=1, help="independent runs (seeds)")
    parser.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--out", default=default_out, help="output directory")
    parser.add_argument("--root", default=None, help="data root (else $VGRAPH_DATA, else datasets/)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    if resume:
        parser.add_argument("--resume", action="store_true",
                            help="continue each run from its last.pt (only --epochs may change)")
        parser.add_argument("--overwrite", action="store_true",
                            help="start afresh in an --out folder that already holds a run")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    if plot:
        parser.add_argument("--no-plot", action="store_true", help="do not draw curves.png")
    return parser


def add_kl_args(parser: argparse.ArgumentParser, *, beta: float = 1.0, norm: str = "kipf"):
    """The KL knobs of :class:`vgraph.nn.KLConfig` as flags (``--beta --kl-norm --kl-warmup
    --kl-cycles --kl-capacity --kl-gamma --free-bits``)."""
    g = parser.add_argument_group("KL term")
    g.add_argument("--beta", type=nonneg_float, default=beta, help="weight of the KL term")
    g.add_argument("--kl-norm", choices=["kipf", "node"], default=norm,
                   help="kipf: KL / N^2 as Kipf's code; node: KL / N")
    g.add_argument("--kl-warmup", type=nonneg_int, default=0, help="epochs of linear KL warm-up")
    g.add_argument("--kl-cycles", type=nonneg_int, default=0, help="cyclical annealing cycles")
    g.add_argument("--kl-capacity", type=nonneg_float, default=None, help="capacity target C (nats)")
    g.add_argument("--kl-gamma", type=nonneg_float, default=1.0, help="weight of |KL - C|")
    g.add_argument("--free-bits", type=nonneg_float, default=0.0, help="free bits per latent dim")
    return parser


def kl_from_args(args, epochs: int | None = None):
    """The :class:`vgraph.nn.KLConfig` that :func:`add_kl_args`' flags describe."""
    from vgraph.nn.variational import KLConfig
    return KLConfig(beta=args.beta, norm=args.kl_norm, warmup=args.kl_warmup, cycles=args.kl_cycles,
                    total_epochs=epochs if epochs is not None else getattr(args, "epochs", 0),
                    capacity=args.kl_capacity, gamma=args.kl_gamma, free_bits=args.free_bits)


# ---------------------------------------------------------------- runtime
def setup_runtime(args) -> Path:
    """Apply ``--threads``/``--device`` and create ``--out``; return the output folder."""
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    device = getattr(args, "device", "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"error: --device {device} requested but CUDA is not available on this machine")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        sys.exit(f"error: --out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    return out


RUN_FILES = ("summary.json", "log.jsonl", "last.pt", "best.pt")


def _holds_run(out: Path) -> bool:
    return any((out / f).exists() for f in RUN_FILES) or any(out.glob("run*/log.jsonl"))


def prepare_out(args) -> Path:
    """:func:`setup_runtime`, then refuse an ``--out`` that already holds a run unless
    ``--resume`` or ``--overwrite`` (which clears the run files first)."""
    out = Path(args.out)
    if out.is_dir() and _holds_run(out) and not getattr(args, "resume", False):
        if not getattr(args, "overwrite", False):
            sys.exit(f"error: --out {out} already holds a run; pass --resume to continue it, "
                     f"--overwrite to start it afresh, or choose another --out")
        for item in out.iterdir():
            if item.name in RUN_FILES or item.name in ("curves.png", "embeddings.pt"):
                item.unlink()
            elif item.is_dir() and item.name.startswith("run") and item.name[3:].isdigit():
                shutil.rmtree(item)
    return setup_runtime(args)


def job_entry(fn):
    """Wrap a job's ``main``: a :class:`VGraphError` becomes one ``error: ...`` line on stderr
    and exit code 1; Ctrl-C after a checkpoint becomes one line and exit code 130."""
    @functools.wraps(fn)
    def wrapper(argv=None, **kwargs):
        try:
            return fn(argv, **kwargs)
        except VGraphError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        except KeyboardInterrupt as exc:  # TrainingInterrupted says where the checkpoint is
            print(f"interrupted: {exc}" if str(exc) else "interrupted", file=sys.stderr)
            raise SystemExit(130) from None
    return wrapper


# -------------------------------------------------------------- summaries
def code_state() -> dict:
    """The git commit and whether ``vgraph/`` or ``scripts/`` had uncommitted changes, so a
    summary says which code produced its numbers (empty outside a git checkout)."""
    import subprocess
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return {}
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "vgraph", "scripts"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return {"commit": head.stdout.strip(), "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {}


def versions() -> dict:
    """Versions of the packages that decide the numbers."""
    out = {"python": platform.python_version(), "torch": torch.__version__,
           "platform": platform.platform(), "threads": torch.get_num_threads()}
    for mod in ("vgraph", "torch_geometric", "numpy", "scipy", "sklearn", "rdkit", "ogb"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            pass
    out["code"] = code_state()
    return out


def mean_std(values) -> dict:
    """``{"mean", "std", "runs"}`` (population std over runs, as tables usually report)."""
    values = [float(v) for v in values]
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "runs": values}


def aggregate(per_run: list[dict]) -> dict:
    """Per-run metric dicts -> ``{metric: mean_std}`` over the numeric metrics every run has."""
    if not per_run:
        return {}
    keys = [k for k in per_run[0] if all(k in r for r in per_run)
            and all(isinstance(r[k], (int, float)) and not isinstance(r[k], bool) for r in per_run)]
    return {k: mean_std([r[k] for r in per_run]) for k in keys}


def write_json(path, obj):
    """Atomically write ``obj`` as pretty JSON."""
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=2, default=str) + "\n").encode())


def format_metric(name: str, stats: dict) -> str:
    return f"{name} {stats['mean']:.4f} ± {stats['std']:.4f}"


def resolved_config(args, drop=("resume", "overwrite", "no_progress", "no_plot", "out", "threads")) -> dict:
    """The flags that define a run (those that only steer output or resuming left out)."""
    return {k: v for k, v in vars(args).items() if k not in drop}


def plot_curves(histories: list[list[dict]], path, *, y: str = "val_auc", x: str = "epoch",
                ylabel: str | None = None):
    """Training loss and one validation metric against ``x`` (``epoch`` or ``time_s``), a line
    per run, into ``path`` (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for r, hist in enumerate(histories):
        tr = [h for h in hist if "loss" in h and x in h]
        a.plot([h[x] for h in tr], [h["loss"] for h in tr], label=f"run {r}")
        ev = [h for h in hist if y in h and x in h]
        b.plot([h[x] for h in ev], [h[y] for h in ev], label=f"run {r}")
    a.set(xlabel=x, ylabel="training loss", title="loss")
    b.set(xlabel=x, ylabel=ylabel or y, title=ylabel or y)
    if len(histories) <= 10:
        b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_seeds(args, one_run, *, job: str, config: dict, headline=("test_auc", "test_ap"),
              title: str | None = None, say=print, write: bool = True, extra: dict | None = None,
              curve: str | None = "val_auc") -> dict:
    """Run ``one_run(r, seed, run_dir)`` for ``r`` in ``range(args.runs)``; print a line per
    run and the mean ± std of ``headline``; write ``summary.json`` and ``curves.png``.

    ``one_run`` returns a dict with ``metrics`` (the run's reported metrics: fractions in
    [0, 1]) and optionally ``best_epoch``, ``history`` (the Trainer's), ``epoch_times`` and
    ``extra`` (anything JSON-able, kept per run in the summary). ``write=False`` (non-zero
    ranks) prints and writes nothing.
    """
    out = Path(args.out)
    runs = getattr(args, "runs", 1)
    per_run, details, histories, epoch_times = [], [], [], []
    t_start = time.perf_counter()
    for r in range(runs):
        seed = args.seed + r
        t0 = time.perf_counter()
        result = one_run(r, seed, out / f"run{r}")
        metrics = result["metrics"]
        per_run.append(metrics)
        histories.append(result.get("history", []))
        epoch_times.extend(result.get("epoch_times", []))
        details.append({"seed": seed, "best_epoch": result.get("best_epoch"),
                        "wall_s": time.perf_counter() - t0, **({"extra": result["extra"]}
                                                               if "extra" in result else {})})
        if write:
            best = f"best epoch {result['best_epoch']}  " if result.get("best_epoch") is not None else ""
            say(f"run {r} (seed {seed}): {best}" + "  ".join(
                f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
    agg = aggregate(per_run)
    shown = [k for k in headline if k in agg]
    if write:
        say(f"{title or job} over {runs} run{'s' if runs > 1 else ''}: "
            + "  ".join(format_metric(k, agg[k]) for k in shown))
    timing = {"total_s": time.perf_counter() - t_start}
    if epoch_times:
        timing["median_epoch_s"] = statistics.median(epoch_times)
    summary = {"job": job, "metrics": agg, "per_run": details, "config": config,
               "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
               "timing": timing, "versions": versions(), **(extra or {})}
    if write:
        write_json(out / "summary.json", summary)
        if curve and not getattr(args, "no_plot", False) and any(histories):
            plot_curves(histories, out / "curves.png", y=curve)
    return summary
