"""Link-prediction metrics: AUC, AP (scikit-learn) and Hits@K (OGB's definition)."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, average_precision_score

from vgraph.errors import TrainingDivergedError


def _np(x):
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, float)


def auc_ap(pos_scores, neg_scores) -> dict:
    """ROC-AUC and average precision of positive vs negative scores."""
    pos, neg = _np(pos_scores), _np(neg_scores)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("auc_ap needs at least one positive and one negative score")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise TrainingDivergedError("the link scores are not finite (training diverged); unscaled "
                                    "input features or a too large learning rate are the usual causes")
    y = np.concatenate([np.ones_like(pos), np.zeros_like(neg)])
    s = np.concatenate([pos, neg])
    return {"auc": float(roc_auc_score(y, s)), "ap": float(average_precision_score(y, s))}


def hits_at_k(pos_scores, neg_scores, k: int) -> float:
    """Fraction of positives scored strictly above the K-th highest negative (OGB's rule)."""
    pos, neg = _np(pos_scores), _np(neg_scores)
    if neg.size < k:
        return 1.0
    kth = np.sort(neg)[-k]
    return float((pos > kth).mean())


def link_metrics(input_dict: dict, ks=(10, 20, 50)) -> dict:
    """``{"pos": scores, "neg": scores}`` -> ``{"auc", "ap", "hits@K"...}``."""
    out = auc_ap(input_dict["pos"], input_dict["neg"])
    for k in ks:
        out[f"hits@{k}"] = hits_at_k(input_dict["pos"], input_dict["neg"], k)
    return out
