"""Metrics as pure functions of labels, predictions and probabilities.

Conventions (each fixes a bug of the original):
- classes are strings; everything is computed on integer indices into ``classes``;
- ECE: top-label confidence, 15 equal-width bins, empty bins carry no weight (Guo et al. 2017);
- PR-AUC: binary -> average precision of the positive class (the train minority unless
  configured); multiclass -> weighted one-vs-rest average precision over every class;
- Brier: mean over samples of sum_k (p_k - y_k)^2 / 2, i.e. the full probability vector,
  scaled to [0, 1]; for two classes it equals the usual binary Brier score;
- degenerate: validation predictions are a single class, or weighted F1 does not beat the
  majority-class baseline.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, confusion_matrix, f1_score, log_loss
from sklearn.preprocessing import label_binarize

METRIC_KEYS = ("accuracy", "f1_weighted", "f1_macro", "pr_auc", "brier", "ece", "log_loss", "confusion")


def reliability_bins(y_idx: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> list[dict]:
    """Top-label reliability: per non-empty equal-width bin over (0, 1], its bounds, count,
    mean confidence and accuracy (what a reliability diagram plots)."""
    y_idx = np.asarray(y_idx)
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_idx).astype(float)
    # bin b holds confidences in (b/n, (b+1)/n]; confidence 0 falls into bin 0
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    return [{"low": b / n_bins, "high": (b + 1) / n_bins, "count": int((bins == b).sum()),
             "confidence": float(conf[bins == b].mean()), "accuracy": float(correct[bins == b].mean())}
            for b in np.unique(bins)]


def expected_calibration_error(y_idx: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE with equal-width bins over (0, 1]; empty bins are skipped, not indexed."""
    n = len(y_idx)
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"])
                     for b in reliability_bins(y_idx, proba, n_bins)))


def brier_score(y_idx: np.ndarray, proba: np.ndarray) -> float:
    onehot = np.eye(proba.shape[1])[np.asarray(y_idx)]
    return float(((proba - onehot) ** 2).sum(axis=1).mean() / 2)


def pr_auc(y_idx: np.ndarray, proba: np.ndarray, positive: int | None) -> float:
    k = proba.shape[1]
    if k == 2:
        y_pos = (np.asarray(y_idx) == positive).astype(int)
        if y_pos.sum() == 0:
            return float("nan")
        return float(average_precision_score(y_pos, proba[:, positive]))
    y_bin = label_binarize(y_idx, classes=list(range(k)))
    present = y_bin.sum(axis=0) > 0
    return float(average_precision_score(y_bin[:, present], proba[:, present], average="weighted"))


def positive_index(classes: list[str], y_train: list[str], configured: str | None) -> int:
    """The positive class for binary PR-AUC: the configured one, else the train minority."""
    if configured is not None:
        return classes.index(configured)
    counts = Counter(y_train)
    return classes.index(min(classes, key=lambda c: (counts.get(c, 0), c)))


def classification_metrics(y_true: list[str], y_pred: list[str], proba: np.ndarray,
                           classes: list[str], positive: int | None = None) -> dict:
    """Every headline metric for one set of predictions; ``proba`` is (n, len(classes))."""
    idx = {c: i for i, c in enumerate(classes)}
    yt = np.array([idx[c] for c in y_true])
    yp = np.array([idx[c] for c in y_pred])
    labels = list(range(len(classes)))
    p = np.clip(proba, 1e-12, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return {
        "n": int(len(yt)),
        "accuracy": float(accuracy_score(yt, yp)),
        "f1_weighted": float(f1_score(yt, yp, average="weighted", labels=labels, zero_division=0)),
        "f1_macro": float(f1_score(yt, yp, average="macro", labels=labels, zero_division=0)),
        "pr_auc": pr_auc(yt, p, positive),
        "brier": brier_score(yt, p),
        "ece": expected_calibration_error(yt, p),
        "ece_bins": 15,
        "log_loss": float(log_loss(yt, p, labels=labels)),
        "confusion": confusion_matrix(yt, yp, labels=labels).tolist(),
        "classes": list(classes),
        "predicted_classes": sorted({classes[i] for i in yp}),
    }


def majority_predictions(y_train: list[str], classes: list[str], n: int) -> tuple[list[str], np.ndarray]:
    """Always the train majority class, with the train class priors as probabilities."""
    counts = Counter(y_train)
    prior = np.array([counts.get(c, 0) for c in classes], dtype=float)
    prior /= prior.sum()
    majority = classes[int(np.argmax(prior))]
    return [majority] * n, np.tile(prior, (n, 1))


def degeneracy(metrics: dict, majority: dict) -> tuple[bool, list[str]]:
    """Is the model as good as useless? Returns (degenerate, reasons)."""
    reasons = []
    if len(metrics["predicted_classes"]) <= 1:
        reasons.append(f"predicts a single class on validation ({', '.join(metrics['predicted_classes'])})")
    if metrics["f1_weighted"] <= majority["f1_weighted"] + 1e-12:
        reasons.append(f"weighted F1 {metrics['f1_weighted']:.3f} does not beat the majority-class "
                       f"baseline {majority['f1_weighted']:.3f}")
    return bool(reasons), reasons


class Scoring(NamedTuple):
    predicted: list[str]   # the labels argmax of the probabilities names
    metrics: dict          # classification_metrics of them
    majority: dict         # the same for always predicting the train majority class
    degenerate: bool       # no better than that (moola.evaluation.metrics.degeneracy)
    reasons: list[str]


def evaluate_predictions(y_true: list[str], y_train: list[str], proba: np.ndarray, classes: list[str],
                         positive: int | None = None) -> Scoring:
    """Score (n, K) probabilities on ``y_true`` next to the majority class of ``y_train``."""
    pred = [classes[i] for i in proba.argmax(axis=1)]
    m = classification_metrics(y_true, pred, proba, classes, positive)
    mpred, mproba = majority_predictions(y_train, classes, len(y_true))
    maj = classification_metrics(y_true, mpred, mproba, classes, positive)
    degenerate, reasons = degeneracy(m, maj)
    return Scoring(pred, m, maj, degenerate, reasons)
