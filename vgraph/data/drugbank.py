"""The DrugBank multi-relational DDI benchmark (1,706 drugs, 191,808 tuples, 86 types).

Layout under the data root (``--root``, else ``$VGRAPH_DATA``)::

    drugbank_ddi/drug_smiles.csv                       drug_id,smiles
    drugbank_ddi/cold_start/fold{0,1,2}/{train,val,s1,s2}.csv.gz
                                                       d1,d2,type,split,Neg samples
    drugbank_ddi/ssi_ddi/Interaction_information.csv   descriptions of "DDI type 1..86"

Tuples are ``(head, tail, type)`` with ``type`` in 0..85; ``DDI type k`` in the description
file is ``type k-1``. Drug ids become row indices through one table
(:attr:`DrugBankDDI.drug_index`) that the feature matrix is built from, so feature row ``i``
is always drug ``i`` (CADGL's code does not guarantee this).

Protocols (one function each, explicit roles in the returned :class:`DDISplit`):

* :func:`warm_split` — a random 8/1/1 split of the tuples; each positive gets one
  type-aware negative (same type, head or tail replaced by a random drug such that the new
  pair has no known interaction), fixed for validation/test, fresh each epoch for training.
* :func:`cold_split` — a DSN-DDI fold: train on ``train.csv``; validation, S1 (both drugs
  unseen in training) and S2 (one unseen) with the negatives written in the files
  (``DBxxxx$h``: replace the head, ``$t``: replace the tail), or (``negatives="dsn-ddi"``)
  with negatives drawn the way DSN-DDI's own evaluation draws them (:func:`dsn_ddi_negatives`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from vgraph.errors import DataFormatError, MissingDataError
from vgraph.ops import SparseGraph
from vgraph.paths import data_root

NUM_TYPES = 86


@dataclass
class DrugBankDDI:
    """Drugs (ids, SMILES), all positive tuples ``[T, 3]`` (head, tail, type) as indices."""
    drug_ids: list
    smiles: list
    tuples: torch.Tensor
    descriptions: list = field(default_factory=list)  # descriptions[type] with #Drug1/#Drug2
    base: object = None

    @property
    def num_drugs(self) -> int:
        return len(self.drug_ids)

    @property
    def drug_index(self) -> dict:
        return {d: i for i, d in enumerate(self.drug_ids)}

    def to_indices(self, ids, what: str) -> torch.Tensor:
        index = self.drug_index
        unknown = [d for d in pd.unique(np.asarray(ids)) if d not in index]
        if unknown:
            raise DataFormatError(f"{what}: {len(unknown)} drug ids are not in drug_smiles.csv "
                                  f"(first: {unknown[0]})")
        return torch.tensor([index[d] for d in ids], dtype=torch.long)


def _read_csv(path):
    if not path.is_file():
        raise MissingDataError(f"DrugBank DDI file {path} is missing (see the dataset README)")
    return pd.read_csv(path)


def load_drugbank(root=None) -> DrugBankDDI:
    """Drugs and all 191,808 tuples (the union of a cold-start fold's four files)."""
    base = data_root(root) / "drugbank_ddi"
    drugs = _read_csv(base / "drug_smiles.csv")
    if list(drugs.columns[:2]) != ["drug_id", "smiles"]:
        raise DataFormatError(f"{base / 'drug_smiles.csv'} must have columns drug_id,smiles")
    if drugs.drug_id.duplicated().any():
        raise DataFormatError(f"{base / 'drug_smiles.csv'} repeats drug id "
                              f"{drugs.drug_id[drugs.drug_id.duplicated()].iloc[0]}")
    data = DrugBankDDI(drugs.drug_id.astype(str).tolist(), drugs.smiles.astype(str).tolist(),
                       torch.zeros(0, 3, dtype=torch.long), base=base)
    parts = [_read_csv(base / "cold_start" / "fold0" / f"{s}.csv.gz") for s in ("train", "val", "s1", "s2")]
    allt = pd.concat(parts, ignore_index=True)
    data.tuples = _tuples(data, allt, "drugbank_ddi cold_start/fold0")
    info = base / "ssi_ddi" / "Interaction_information.csv"
    if info.is_file():
        df = pd.read_csv(info)
        desc = [""] * NUM_TYPES
        for _, row in df.iterrows():
            k = int(str(row["DDI type"]).split()[-1]) - 1
            if 0 <= k < NUM_TYPES:
                desc[k] = str(row["Description"])
        data.descriptions = desc
    return data


def _tuples(data: DrugBankDDI, df: pd.DataFrame, what: str) -> torch.Tensor:
    types = torch.tensor(np.array(df["type"].to_numpy(), dtype=np.int64))
    if types.numel() and (int(types.min()) < 0 or int(types.max()) >= NUM_TYPES):
        raise DataFormatError(f"{what}: interaction types must lie in 0..{NUM_TYPES - 1}")
    return torch.stack([data.to_indices(df.d1.astype(str), what),
                        data.to_indices(df.d2.astype(str), what), types], 1)


@dataclass
class DDISplit:
    """Roles of one protocol. ``train`` ``[T, 3]`` positives (also the message-passing graph);
    ``eval`` maps a name (``"val"``, ``"test"``, ``"s1"``, ``"s2"``) to ``(pos [T, 3], neg [T, 3])``;
    ``train_drugs``: drugs with training tuples (others are unseen: isolated in the graph)."""
    protocol: str
    train: torch.Tensor
    eval: dict
    train_drugs: torch.Tensor
    num_drugs: int

    def summary(self) -> dict:
        return {"protocol": self.protocol, "train": int(self.train.size(0)),
                "train_drugs": int(self.train_drugs.numel()),
                **{k: int(v[0].size(0)) for k, v in self.eval.items()}}


def pair_keys(heads: torch.Tensor, tails: torch.Tensor, num_drugs: int) -> torch.Tensor:
    """Orientation-free pair keys ``min * N + max`` (a known DDI in either direction)."""
    return torch.minimum(heads, tails) * num_drugs + torch.maximum(heads, tails)


def corrupt(pos: torch.Tensor, num_drugs: int, known: torch.Tensor, generator,
            candidates: torch.Tensor | None = None) -> torch.Tensor:
    """Type-aware negatives: for each ``(h, t, r)`` replace ``h`` or ``t`` (coin flip) by a
    random drug (from ``candidates`` if given) so that the new pair is not in ``known``
    (sorted orientation-free pair keys) and is not a self-pair. Shapes: ``[T, 3] -> [T, 3]``."""
    neg = pos.clone()
    todo = torch.arange(pos.size(0))
    for _ in range(50):
        if todo.numel() == 0:
            break
        k = todo.numel()
        if candidates is None:
            new = torch.randint(0, num_drugs, (k,), generator=generator)
        else:
            new = candidates[torch.randint(0, candidates.numel(), (k,), generator=generator)]
        head = torch.rand(k, generator=generator) < 0.5
        h = torch.where(head, new, pos[todo, 0])
        t = torch.where(head, pos[todo, 1], new)
        key = pair_keys(h, t, num_drugs)
        pos_in = torch.searchsorted(known, key).clamp(max=max(known.numel() - 1, 0))
        bad = (known.numel() > 0) & (known[pos_in] == key) if known.numel() else torch.zeros(k, dtype=torch.bool)
        bad = bad | (h == t)
        ok = ~bad
        neg[todo[ok], 0], neg[todo[ok], 1] = h[ok], t[ok]
        todo = todo[bad]
    return neg


def known_pairs(tuples: torch.Tensor, num_drugs: int) -> torch.Tensor:
    return torch.unique(pair_keys(tuples[:, 0], tuples[:, 1], num_drugs))


def warm_split(data: DrugBankDDI, seed: int = 0, ratios=(0.8, 0.1, 0.1)) -> DDISplit:
    """Random 8/1/1 split of the tuples with fixed type-aware 1:1 negatives for val/test."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(data.tuples.size(0), generator=g)
    n_train = int(round(ratios[0] * perm.numel()))
    n_val = int(round(ratios[1] * perm.numel()))
    train = data.tuples[perm[:n_train]]
    val = data.tuples[perm[n_train:n_train + n_val]]
    test = data.tuples[perm[n_train + n_val:]]
    known = known_pairs(data.tuples, data.num_drugs)  # evaluation negatives are true non-DDIs
    ev = {"val": (val, corrupt(val, data.num_drugs, known, g)),
          "test": (test, corrupt(test, data.num_drugs, known, g))}
    drugs = torch.unique(train[:, :2])
    return DDISplit("warm", train, ev, drugs, data.num_drugs)


def _file_negatives(data: DrugBankDDI, df: pd.DataFrame, pos: torch.Tensor, what: str) -> torch.Tensor:
    col = "split" if df["split"].astype(str).str.contains(r"\$").any() else "Neg samples"
    spec = df[col].astype(str).str.split("$", n=1, expand=True)
    if spec.shape[1] != 2 or not spec[1].isin(["h", "t"]).all():
        raise DataFormatError(f"{what}: negative samples must look like 'DB00001$h' or '$t'")
    other = data.to_indices(spec[0], what)
    neg = pos.clone()
    head = torch.tensor(np.array((spec[1] == "h").to_numpy(), dtype=bool))
    neg[head, 0] = other[head]
    neg[~head, 1] = other[~head]
    return neg


COLD_NEGATIVES = ("files", "dsn-ddi")


def cold_split(data: DrugBankDDI, fold: int = 0, negatives: str = "files", seed: int = 0) -> DDISplit:
    """DSN-DDI cold-start fold: train / val / S1 (both unseen) / S2 (one unseen). Evaluation
    negatives: ``"files"`` (the ``$h``/``$t`` column of each file) or ``"dsn-ddi"`` (drawn once,
    seeded, by :func:`dsn_ddi_negatives`)."""
    if negatives not in COLD_NEGATIVES:
        raise ValueError(f"negatives must be one of {COLD_NEGATIVES}, got {negatives!r}")
    folder = data.base / "cold_start" / f"fold{fold}"
    ev = {}
    train = None
    generator = torch.Generator().manual_seed(seed)
    for name in ("train", "val", "s1", "s2"):
        df = _read_csv(folder / f"{name}.csv.gz")
        pos = _tuples(data, df, f"{folder.name}/{name}")
        if name == "train":
            train = pos
        elif negatives == "files":
            ev[name] = (pos, _file_negatives(data, df, pos, f"{folder.name}/{name}"))
        else:
            ev[name] = (pos, dsn_ddi_negatives(pos, data.tuples, data.num_drugs, generator))
    drugs = torch.unique(train[:, :2])
    tag = "" if negatives == "files" else f"-{negatives}"
    return DDISplit(f"cold{fold}{tag}", train, ev, drugs, data.num_drugs)


def dsn_ddi_negatives(pos: torch.Tensor, everything: torch.Tensor, num_drugs: int, generator) -> torch.Tensor:
    """One negative per positive of an evaluation set, drawn as DSN-DDI's evaluation does
    (``drugbank_test/data_preprocessing.py`` of microsoft/Drug-Interaction-Research,
    ``DrugDataset(..., disjoint_split=True)``): the replacement drug comes from the drugs of
    this set's own tuples; the head is replaced with probability ``tph_r / (tph_r + hpt_r)``
    (tails per head and heads per tail of type ``r`` over all tuples, the "bern" rule), else the
    tail; a drug that is a true head of ``(t, r)`` (tail of ``(h, r)``) in ``everything`` is
    redrawn. Unlike DSN-DDI the draw is seeded and made once (its code redraws at every
    evaluation), and a self-pair is redrawn. Shapes: ``[T, 3] -> [T, 3]``."""
    num_types = int(everything[:, 2].max()) + 1 if everything.numel() else 1
    counts = torch.bincount(everything[:, 2], minlength=num_types).double()
    heads = torch.unique(everything[:, 2] * num_drugs + everything[:, 0])
    tails = torch.unique(everything[:, 2] * num_drugs + everything[:, 1])
    n_heads = torch.bincount(heads // num_drugs, minlength=num_types).double().clamp(min=1)
    n_tails = torch.bincount(tails // num_drugs, minlength=num_types).double().clamp(min=1)
    tph, hpt = counts / n_heads, counts / n_tails
    p_head = torch.where(tph + hpt > 0, tph / (tph + hpt).clamp(min=1e-12), torch.full_like(tph, 0.5))

    def key(h, t, r):
        return (h * num_drugs + t) * num_types + r

    true = torch.unique(key(everything[:, 0], everything[:, 1], everything[:, 2]))
    pool = torch.unique(pos[:, :2])
    head = torch.rand(pos.size(0), generator=generator, dtype=torch.float64) < p_head[pos[:, 2]]
    neg = pos.clone()
    todo = torch.arange(pos.size(0))
    for _ in range(100):
        if todo.numel() == 0:
            break
        new = pool[torch.randint(0, pool.numel(), (todo.numel(),), generator=generator)]
        hd = head[todo]
        h = torch.where(hd, new, pos[todo, 0])
        t = torch.where(hd, pos[todo, 1], new)
        k = key(h, t, pos[todo, 2])
        at = torch.searchsorted(true, k).clamp(max=true.numel() - 1)
        bad = (true[at] == k) | (h == t)
        ok = ~bad
        neg[todo[ok], 0], neg[todo[ok], 1] = h[ok], t[ok]
        todo = todo[bad]
    if todo.numel():
        raise DataFormatError(f"could not draw DSN-DDI negatives for {todo.numel()} tuples")
    return neg


def ddi_graph(tuples: torch.Tensor, num_nodes: int, keep: torch.Tensor | None = None) -> SparseGraph:
    """Undirected drug graph of the tuples' pairs (types merged); ``keep`` masks drugs whose
    edges stay (the others become isolated)."""
    pairs = torch.unique(torch.sort(tuples[:, :2], 1).values, dim=0)
    if keep is not None:
        pairs = pairs[keep[pairs[:, 0]] & keep[pairs[:, 1]]]
    e = pairs.t()
    g = SparseGraph(torch.cat([e, e.flip(0)], 1), num_nodes, _validated=True)
    return g
