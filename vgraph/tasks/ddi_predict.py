"""Score a user's CSV of drug pairs with the model file ``vgraph ddi`` writes (``model.pt``).

The file is a :class:`vgraph.models.ddi.DDIBundle` written by :func:`vgraph.hub.save_model`
(:func:`save_drugbank_predictor`, :func:`save_ogbl_predictor`): the model's class and
constructor arguments, the featuriser's scaling (``transform``), the drug table and type
descriptions (``meta``) and the tensors prediction needs. :func:`load_predictor` reads it back
without any training flag.

Each input row names two drugs, each a DrugBank id (``DB00001``, any case) or a SMILES string;
a SMILES whose canonical form is a known drug's is that drug. Rows that cannot be scored keep
their place in the output with a ``status`` saying why (unknown id, invalid SMILES, empty,
duplicate, same drug twice); every other row is predicted.

A row's numbers depend on that row alone: known drugs' posteriors come from one pass over the
fixed training table, a new drug's from a pass over itself (an isolated node), the posterior
noise of a drug is drawn from a generator seeded by the drug's identity, and each pair is
decoded on its own. Interaction types are numbered 1..86 as in ``Interaction_information.csv``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vgraph.errors import CheckpointError, DataFormatError

DRUGBANK_ID = re.compile(r"^DB\d{5}$", re.IGNORECASE)
KINDS = ("ogbl-ddi", "drugbank")
BUILDER = "vgraph.models.ddi:DDIBundle"
#: The DrugBank model shipped in the package (``vgraph predict-ddi`` without ``--checkpoint``).
SHIPPED_DRUGBANK = Path(__file__).resolve().parent.parent / "chem" / "pretrained" / "drugbank_ddi.pt"


def shipped_checkpoint() -> Path:
    """The shipped DrugBank model file; one-line error when this install has none."""
    if not SHIPPED_DRUGBANK.is_file():
        raise CheckpointError(f"no --checkpoint given and this vgraph ships no DrugBank model "
                              f"({SHIPPED_DRUGBANK} is missing): pass --checkpoint <model.pt from vgraph ddi>")
    return SHIPPED_DRUGBANK


# ------------------------------------------------------------------ writing
def save_drugbank_predictor(path, model, model_kwargs: dict, featurizer, data, raw_desc, raw_fps,
                            train_pairs: torch.Tensor, meta: dict | None = None):
    """Write a DrugBank :class:`ContextDDIModel` with what prediction needs: the known drugs'
    ids, canonical SMILES and raw structure features, the training graph's pairs and the
    type descriptions."""
    from vgraph.chem.descriptors import canonical
    from vgraph.hub import save_model
    from vgraph.models.ddi import DDIBundle
    tensors = {"raw_desc": torch.as_tensor(np.asarray(raw_desc, np.float64)),
               "raw_fps": torch.as_tensor(np.asarray(raw_fps)).bool(),
               "train_pairs": train_pairs.long().contiguous()}
    kwargs = DDIBundle.describe("ContextDDIModel", model_kwargs, tensors)
    bundle = DDIBundle(**kwargs)
    bundle.model.load_state_dict(model.state_dict())
    for k, t in tensors.items():
        getattr(bundle, k).copy_(t)
    info = {"kind": "drugbank", "drug_ids": list(data.drug_ids),
            "canonical_smiles": [canonical(s) for s in data.smiles],
            "descriptions": list(data.descriptions), **(meta or {})}
    save_model(path, bundle, builder=DDIBundle, kwargs=kwargs,
               transform={"featurizer": featurizer.state_dict()}, meta=info)


def _pair_dtype(num_drugs: int):
    return torch.int16 if num_drugs < 2 ** 15 else torch.int32


def save_drugbank_atom_predictor(path, model, model_kwargs: dict, data, graphs, train_pairs: torch.Tensor,
                                 meta: dict | None = None, half: bool = False, featurizer=None, raw_desc=None):
    """Write a DrugBank :class:`AtomDDIModel` with what prediction needs: the known drugs' ids,
    canonical SMILES and atom graphs (compact integer arrays, Morgan bits packed), the training
    graph's pairs and the type descriptions; for a model that reads descriptors
    (``featurizer`` and ``raw_desc`` given) the known drugs' scaled descriptors and the scaling.
    ``half`` stores the floating-point tensors as float16 (a shipped model)."""
    from vgraph.chem.descriptors import canonical
    from vgraph.chem.drug_graphs import ATOM_FEATURES, BOND_FEATURE, atom_feature_sizes
    from vgraph.hub import save_model
    from vgraph.models.ddi import DDIBundle
    arrays = graphs.arrays()
    tensors = {f"atoms_{k}": torch.as_tensor(np.ascontiguousarray(v)) for k, v in arrays.items()}
    tensors["atoms_num_atoms"] = tensors["atoms_num_atoms"].int()
    tensors["atoms_num_bonds"] = tensors["atoms_num_bonds"].int()
    tensors["train_pairs"] = train_pairs.to(_pair_dtype(data.num_drugs)).contiguous()
    if featurizer is not None:  # scaled and clipped to [-6, 6]: safe in float16
        n = len(featurizer.mean)
        tensors["mol_desc"] = featurizer.transform_raw(np.asarray(raw_desc), np.zeros((len(raw_desc), 0)))[:, :n]
    kwargs = DDIBundle.describe("AtomDDIModel", model_kwargs, tensors)
    bundle = DDIBundle(**kwargs)
    bundle.model.load_state_dict(model.state_dict())
    for k, t in tensors.items():
        getattr(bundle, k).copy_(t)
    info = {"kind": "drugbank", "encoder": "atoms", "drug_ids": list(data.drug_ids),
            "canonical_smiles": [canonical(s) for s in data.smiles],
            "descriptions": list(data.descriptions), **(meta or {})}
    transform = {"atom_features": list(ATOM_FEATURES), "atom_feature_sizes": atom_feature_sizes(),
                 "bond_feature": BOND_FEATURE}
    if featurizer is not None:
        transform["featurizer"] = featurizer.state_dict()
    save_model(path, bundle, builder=DDIBundle, kwargs=kwargs, transform=transform, meta=info, half=half)


def save_ogbl_predictor(path, model, model_kwargs: dict, z: torch.Tensor, node_drug_ids,
                        meta: dict | None = None):
    """Write an ogbl-ddi :class:`EmbeddingLinkPredictor` with its eval-mode node embeddings."""
    from vgraph.hub import save_model
    from vgraph.models.ddi import DDIBundle
    tensors = {"z": z.detach().float().contiguous()}
    kwargs = DDIBundle.describe("EmbeddingLinkPredictor", model_kwargs, tensors)
    bundle = DDIBundle(**kwargs)
    bundle.model.load_state_dict(model.state_dict())
    bundle.z.copy_(tensors["z"])
    save_model(path, bundle, builder=DDIBundle, kwargs=kwargs,
               meta={"kind": "ogbl-ddi", "node_drug_ids": list(node_drug_ids or []), **(meta or {})})


# ------------------------------------------------------------------ reading
def load_predictor(path):
    """The predictor of a DDI model file; an older checkpoint, a model of another job or a
    damaged file is refused with one line."""
    from vgraph.hub import load
    try:
        bundle, info = load(path, with_info=True)
    except CheckpointError as exc:
        if "not a model file" in str(exc):
            raise CheckpointError(f"{path} is not a DDI model file of this vgraph (a checkpoint "
                                  f"of an older train_ddi.py or of another job?): retrain it with "
                                  f"`vgraph ddi`, which writes <out>/model.pt") from None
        raise
    if info.builder != BUILDER or info.meta.get("kind") not in KINDS:
        raise CheckpointError(f"{path} is a vgraph model file but not a DDI model "
                              f"({info.builder}); train one with `vgraph ddi`")
    if info.meta["kind"] == "drugbank":
        return DrugBankPredictor(bundle, info)
    return OgblPredictor(bundle, info)


def read_pairs(path) -> pd.DataFrame:
    """The pairs CSV as strings; a header without ``drug1`` and ``drug2`` is an error."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path} is empty: expected a header drug1,drug2") from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path} is not UTF-8 text (byte {exc.start}): save the pairs as a "
                              f"UTF-8 CSV with header drug1,drug2") from None
    except (pd.errors.ParserError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DataFormatError(f"{path} is not a readable CSV of pairs: {first}") from None
    except FileNotFoundError:
        raise DataFormatError(f"pairs file {path} does not exist") from None
    cols = {c.strip().lower(): c for c in df.columns}
    missing = [c for c in ("drug1", "drug2") if c not in cols]
    if missing:
        raise DataFormatError(f"{path}: header {list(df.columns)} lacks column(s) {missing}; "
                              f"expected drug1,drug2")
    return pd.DataFrame({"drug1": df[cols["drug1"]].astype(str).str.strip(),
                         "drug2": df[cols["drug2"]].astype(str).str.strip()})


def write_predictions(frame: pd.DataFrame, path):
    """Write the predictions CSV atomically (a crash never leaves half a file)."""
    import os
    path = Path(path)
    if path.is_dir():
        raise DataFormatError(f"--out {path} is a directory: give the CSV file to write")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataFormatError(f"cannot write {path}: {exc.strerror or exc}") from None


@dataclass
class Resolved:
    index: int | None = None      # row in the predictor's drug table
    smiles: str | None = None     # a new drug, as canonical SMILES
    error: str | None = None

    @property
    def key(self) -> str:
        return f"known:{self.index}" if self.index is not None else f"new:{self.smiles}"


def _noise(key: str, samples: int, width: int) -> torch.Tensor:
    """``[samples, width]`` standard normal noise fixed by a drug's identity (not its row)."""
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") % (2 ** 63)
    return torch.randn(samples, width, generator=torch.Generator().manual_seed(seed))


class _Base:
    def resolve(self, token: str) -> Resolved:
        raise NotImplementedError

    def predict_frame(self, pairs: pd.DataFrame, top_k: int = 3, samples: int = 30,
                      progress: bool = False) -> pd.DataFrame:
        """One output row per input row: ``row, drug1, drug2, status`` and the scores."""
        rows, todo, seen = [], [], {}
        for i, (a, b) in enumerate(zip(pairs.drug1, pairs.drug2)):
            rec = {"row": i + 1, "drug1": a, "drug2": b, "status": "ok"}
            if not a and not b:
                rec["status"] = "skipped: empty row"
            elif not a or not b:
                rec["status"] = f"skipped: {'drug1' if not a else 'drug2'} is empty"
            elif (a, b) in seen:
                rec["status"] = f"skipped: duplicate of row {seen[(a, b)]}"
            else:
                seen[(a, b)] = i + 1
                ra, rb = self.resolve(a), self.resolve(b)
                err = ra.error or rb.error
                if err:
                    rec["status"] = f"skipped: {'drug1' if ra.error else 'drug2'} {err}"
                elif ra.key == rb.key:
                    rec["status"] = "skipped: drug1 and drug2 are the same drug"
                else:
                    todo.append((len(rows), ra, rb))
            rows.append(rec)
        if todo:
            self._score(rows, todo, top_k, samples, progress)
        out = pd.DataFrame(rows)
        for col in out.columns:
            if re.fullmatch(r"type\d+", col):
                out[col] = out[col].astype("Int64")  # blank, not NaN-float, on skipped rows
        return out


class OgblPredictor(_Base):
    """ogbl-ddi model: drugs are the graph's nodes (DrugBank id or node index); no SMILES."""

    def __init__(self, bundle, info):
        self.model, self.z = bundle.model, bundle.z
        self.num_nodes = self.z.size(0)
        self.index = {d.upper(): i for i, d in enumerate(info.meta.get("node_drug_ids", []))}

    def resolve(self, token):
        if DRUGBANK_ID.match(token):
            token = token.upper()
            return Resolved(self.index[token]) if token in self.index else \
                Resolved(error=f"{token} is not a node of ogbl-ddi")
        if token.isdigit():
            k = int(token)
            return Resolved(k) if k < self.num_nodes else Resolved(error=f"node {k} out of range")
        return Resolved(error="is not a DrugBank id or node index (the ogbl-ddi model has no "
                              "structure input; use a DrugBank model for SMILES)")

    @torch.no_grad()
    def _score(self, rows, todo, top_k, samples, progress):
        for k, ra, rb in todo:  # one pair per call: the number cannot depend on the others
            logit = self.model.decode(self.z, torch.tensor([[ra.index], [rb.index]]))
            rows[k]["probability"] = round(float(torch.sigmoid(logit)[0]), 6)


class DrugBankPredictor(_Base):
    """DrugBank model: known drugs by id or SMILES, new drugs from SMILES (isolated nodes).
    Descriptor models featurise a new drug with the stored scaling; atom models encode its
    atom graph."""

    def __init__(self, bundle, info):
        from vgraph.data.drugbank import ddi_graph
        self.model = bundle.model
        meta = info.meta
        self.encoder = meta.get("encoder", "descriptors")
        self.drug_ids, self.descriptions = list(meta["drug_ids"]), list(meta["descriptions"])
        self.index = {d.upper(): i for i, d in enumerate(self.drug_ids)}
        self.by_smiles = {}
        for i, s in enumerate(meta["canonical_smiles"]):
            if s is not None:
                self.by_smiles.setdefault(s, i)
        if self.encoder == "atoms":
            from vgraph.chem.drug_graphs import ATOM_FEATURES, AtomGraphs, atom_feature_sizes
            if list(info.transform.get("atom_features", [])) != list(ATOM_FEATURES) or \
                    list(info.transform.get("atom_feature_sizes", [])) != atom_feature_sizes():
                raise CheckpointError("the model was trained with other atom featurisers than this vgraph "
                                      "has: retrain it with `vgraph ddi --encoder atoms`")
            graphs = AtomGraphs.from_arrays({k[len("atoms_"):]: getattr(bundle, k).numpy()
                                             for k in dict(bundle.named_buffers()) if k.startswith("atoms_")})
            self.mol_features = meta.get("mol_features", "none")
            self.featurizer = None
            if self.mol_features == "descriptors":
                from vgraph.chem.descriptors import DrugFeaturizer
                self.featurizer = DrugFeaturizer.from_state(info.transform["featurizer"])
                x = self._atom_inputs(graphs, torch.cat([bundle.mol_desc.float(),
                                                         torch.from_numpy(graphs.fingerprint_bits())], 1))
            else:
                x = self._atom_inputs(graphs)
        else:
            from vgraph.chem.descriptors import DrugFeaturizer
            self.featurizer = DrugFeaturizer.from_state(info.transform["featurizer"])
            x = self.featurizer.transform_raw(bundle.raw_desc.numpy(), bundle.raw_fps.numpy().astype(np.float32))
        graph = ddi_graph(bundle.train_pairs.long(), len(self.drug_ids))  # the graph training evaluated on
        with torch.no_grad():  # one pass over the fixed training table
            self.known = self.model.posterior(x, graph)
        self.known_atoms = self._atom_states()  # the cross-attention model's atom projections (else None)
        self.temperature = float(meta.get("temperature", 1.0))  # fitted on validation (1: none)

    @torch.no_grad()
    def evaluate(self, split) -> dict:
        """Metrics of this file's model (posterior means) on a split's evaluation sets, e.g. the
        split it was trained on: ``{"test_auroc", ...}``."""
        from vgraph.metrics.classification import binary_metrics
        out = {}
        for name, (pos, neg) in split.eval.items():
            m = binary_metrics(torch.sigmoid(self.model.score(self.known[0], pos, self.known_atoms)).numpy(),
                               torch.sigmoid(self.model.score(self.known[0], neg, self.known_atoms)).numpy())
            out.update({f"{name}_{k}": v for k, v in m.items()})
        return out

    def _atom_states(self):
        states = getattr(self.model, "atom_states", None)
        return states() if states is not None else None

    def _drug_atoms(self, r: Resolved, new: dict) -> torch.Tensor:
        """The atom projections ``[n, 3d]`` of one drug (cross-attention models)."""
        if r.index is None:
            return new[r.smiles][2]
        qkv, ptr = self.known_atoms
        return qkv[int(ptr[r.index]):int(ptr[r.index + 1])]

    def _pair_cross(self, ra: Resolved, rb: Resolved, new: dict):
        """The pair's cross-attention readouts (``None`` for a model without them): the pair's
        two atom tables alone, so the numbers cannot depend on other rows."""
        if getattr(self.model, "cross", None) is None:
            return None
        a, b = self._drug_atoms(ra, new), self._drug_atoms(rb, new)
        ptr = torch.tensor([0, a.size(0), a.size(0) + b.size(0)])
        return self.model.cross(torch.cat([a, b]), ptr, torch.tensor([0]), torch.tensor([1]))

    def _atom_inputs(self, graphs, features=None):
        from vgraph.models.ddi import atom_batch
        if features is None and self.mol_features == "fingerprint":
            features = "fingerprint"
        return atom_batch(graphs, features=features)

    def resolve(self, token):
        from vgraph.chem.descriptors import canonical
        if DRUGBANK_ID.match(token):
            token = token.upper()
            return Resolved(self.index[token]) if token in self.index else \
                Resolved(error=f"unknown DrugBank id {token} (not among the {len(self.index)} "
                               f"training drugs; give its SMILES instead)")
        smiles = canonical(token)
        if smiles is None:
            return Resolved(error=f"invalid SMILES {token[:40]!r} (RDKit cannot parse it)")
        if smiles in self.by_smiles:
            return Resolved(self.by_smiles[smiles])
        return Resolved(smiles=smiles)

    def _name(self, r: Resolved, token: str) -> str:
        return self.drug_ids[r.index] if r.index is not None else token

    def _new_posteriors(self, smiles: list, progress: bool) -> dict:
        from vgraph.ops import SparseGraph
        if not smiles:
            return {}
        alone = SparseGraph(torch.zeros(2, 0, dtype=torch.long), 1)
        out = {}
        if self.encoder == "atoms":
            from vgraph.chem.drug_graphs import drug_atom_graphs
            graphs = drug_atom_graphs(smiles, use_cache=False, progress=progress and len(smiles) > 20)
            feats = None
            if self.featurizer is not None:
                from vgraph.chem.descriptors import raw_drug_features
                desc, fps = raw_drug_features(smiles, use_cache=False, progress=progress and len(smiles) > 20)
                feats = self.featurizer.transform_raw(desc, fps)
            for i, s in enumerate(smiles):  # each new drug alone: an isolated node
                x = self._atom_inputs(graphs.select([i]), None if feats is None else feats[i:i + 1])
                mu, logstd = self.model.posterior(x, alone)
                states = self._atom_states()
                out[s] = (mu[0], logstd[0], None if states is None else states[0])
            return out
        from vgraph.chem.descriptors import raw_drug_features
        desc, fps = raw_drug_features(smiles, use_cache=False, progress=progress and len(smiles) > 20)
        for i, s in enumerate(smiles):  # each new drug alone: an isolated node
            mu, logstd = self.model.posterior(self.featurizer.transform_raw(desc[i:i + 1], fps[i:i + 1]), alone)
            out[s] = (mu[0], logstd[0])
        return out

    @torch.no_grad()
    def _score(self, rows, todo, top_k, samples, progress):
        new = self._new_posteriors(sorted({r.smiles for _, ra, rb in todo for r in (ra, rb)
                                           if r.smiles is not None}), progress)
        width = self.known[0].size(1)

        def latent(r: Resolved) -> torch.Tensor:  # [S, latent]: samples, or the mean for S = 0
            mu, logstd = (self.known[0][r.index], self.known[1][r.index]) if r.index is not None \
                else new[r.smiles][:2]
            if samples == 0:
                return mu[None]
            return mu + _noise(r.key, samples, width) * logstd.exp()

        k_top = min(top_k, self.model.num_types)
        for k, ra, rb in todo:
            logits = self.model.decode_pairs(latent(ra), latent(rb), self._pair_cross(ra, rb, new))
            prob = torch.sigmoid(logits / self.temperature)  # [S, types]
            mean = prob.mean(0)
            std = prob.std(0) if prob.size(0) > 1 else None
            top = mean.topk(k_top)
            a, b = self._name(ra, rows[k]["drug1"]), self._name(rb, rows[k]["drug2"])
            best = int(top.indices[0])
            rows[k]["probability"] = round(float(mean[best]), 6)
            rows[k]["uncertainty"] = round(float(std[best]), 6) if std is not None else None
            for t, ty in enumerate(top.indices.tolist(), start=1):
                text = self.descriptions[ty] if ty < len(self.descriptions) else ""
                rows[k][f"type{t}"] = ty + 1  # 1..86, as in Interaction_information.csv
                rows[k][f"type{t}_prob"] = round(float(mean[ty]), 6)
                rows[k][f"type{t}_std"] = round(float(std[ty]), 6) if std is not None else None
                rows[k][f"type{t}_description"] = text.replace("#Drug1", a).replace("#Drug2", b)
