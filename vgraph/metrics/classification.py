"""Binary classification metrics (DDI tuples vs their negatives), as fractions in [0, 1]."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score


def binary_metrics(pos_prob, neg_prob, threshold: float = 0.5) -> dict:
    """``{"acc", "auroc", "auprc", "f1"}`` of positive vs negative probabilities (fractions)."""
    p = np.concatenate([np.asarray(pos_prob, float), np.asarray(neg_prob, float)])
    y = np.concatenate([np.ones(len(pos_prob)), np.zeros(len(neg_prob))])
    pred = p >= threshold
    return {"acc": float((pred == y).mean()), "auroc": float(roc_auc_score(y, p)),
            "auprc": float(average_precision_score(y, p)), "f1": float(f1_score(y, pred))}
