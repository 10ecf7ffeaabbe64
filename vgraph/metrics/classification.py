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


def expected_calibration_error(prob, label, bins: int = 15) -> float:
    """ECE of binary probabilities: ``sum_b (n_b / n) |mean(label in b) - mean(prob in b)|``
    over ``bins`` equal-width bins of the predicted probability of the positive class."""
    prob, label = np.asarray(prob, float).ravel(), np.asarray(label, float).ravel()
    if prob.size == 0:
        return 0.0
    which = np.minimum((prob * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.sum() / prob.size * abs(label[m].mean() - prob[m].mean())
    return float(total)


def fit_temperature(pos_logits, neg_logits, lo: float = 0.05, hi: float = 20.0) -> float:
    """The temperature ``T`` minimising the binary cross-entropy of ``sigmoid(logit / T)`` on
    positives (label 1) and negatives (label 0): temperature scaling (Guo et al., ICML 2017),
    a bounded 1-D search on ``log T`` (deterministic)."""
    from scipy.optimize import minimize_scalar
    z = np.concatenate([np.asarray(pos_logits, float), np.asarray(neg_logits, float)])
    y = np.concatenate([np.ones(len(pos_logits)), np.zeros(len(neg_logits))])
    if z.size == 0:
        return 1.0
    sign = 1 - 2 * y  # BCE(sigmoid(s), y) = softplus(s * (1 - 2y))

    def nll(log_t):
        return float(np.logaddexp(0.0, sign * z / np.exp(log_t)).mean())

    res = minimize_scalar(nll, bounds=(np.log(lo), np.log(hi)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def calibration_report(logits: dict, fit_on: str = "val") -> dict:
    """Temperature fitted on ``logits[fit_on]`` and, for each set ``name -> (pos, neg)``
    logits, ``{name}_ece`` before and ``{name}_ece_calibrated`` after scaling."""
    t = fit_temperature(*logits[fit_on]) if fit_on in logits else 1.0
    out = {"temperature": t, "fit_on": fit_on}
    for name, (pos, neg) in logits.items():
        z = np.concatenate([np.asarray(pos, float), np.asarray(neg, float)])
        y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
        out[f"{name}_ece"] = expected_calibration_error(1 / (1 + np.exp(-z)), y)
        out[f"{name}_ece_calibrated"] = expected_calibration_error(1 / (1 + np.exp(-z / t)), y)
    return out
