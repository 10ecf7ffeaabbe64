"""Where raw data is read from and where processed caches are written.

Raw files are read from the *data root*: an explicit ``root`` argument, else
``$VGRAPH_DATA``, else the repository's ``datasets/`` folder. vgraph never writes there;
processed caches go to ``$VGRAPH_CACHE`` (default ``~/.cache/vgraph``).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
# In a source checkout the repository's datasets/ folder; in an installed package (no
# checkout around it) a folder in the user's home, so messages never point into site-packages.
REPO_DATASETS = (_CHECKOUT / "datasets" if (_CHECKOUT / "pyproject.toml").is_file()
                 else Path("~/vgraph-datasets").expanduser())


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the raw-data root: ``root``, else ``$VGRAPH_DATA``, else the checkout's
    ``datasets/`` (``~/vgraph-datasets`` for an installed package)."""
    if root is not None:
        return Path(root).expanduser().resolve()
    env = os.environ.get("VGRAPH_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return REPO_DATASETS


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under ``$VGRAPH_CACHE`` (default ``~/.cache/vgraph``)."""
    base = Path(os.environ.get("VGRAPH_CACHE", "~/.cache/vgraph")).expanduser()
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def fingerprint(paths, *extra) -> str:
    """Short hash of files' sizes/mtimes and ``extra`` options, to key a cache entry."""
    h = hashlib.sha256()
    for p in paths:
        st = Path(p).stat()
        h.update(f"{Path(p).name}:{st.st_size}:{int(st.st_mtime)}".encode())
    for e in extra:
        h.update(repr(e).encode())
    return h.hexdigest()[:16]
