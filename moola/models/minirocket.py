"""Gate 2's control: sktime MiniRocket + RidgeClassifierCV on the raw MiniRocket features.

Fitted step by step, outside an sklearn Pipeline (sktime transformers break inside a
scikit-learn 1.9 Pipeline). It sees the same per-window normalised inputs as the LSTM, so the
comparison is about the model, not the preprocessing.

No StandardScaler between the features and the ridge, as in the reference MiniRocket: its
features are proportions in [0, 1], and standardising them lifts near-constant ones to the
weight of informative ones. On ArrowHead (official split, random states 0-2) the scaler cost
3-4 pp of accuracy (0.846-0.863 vs 0.886-0.897; bench/RESULTS.md, "The control's strength").

Probabilities: one temperature ``t`` so that softmax(t * ridge scores) fits the ridge's exact
leave-one-out scores on the *train* windows (a second RidgeClassifierCV at the chosen alpha with
a scorer and ``store_cv_results`` stores them). A single positive temperature keeps the ridge's
own argmax, so predictions are the ridge's; the Platt scaling used before (a logistic regression
on the scores) could move the argmax and cost another 4-5 pp on ArrowHead. Nothing about
validation data is used to fit any part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.linear_model import RidgeClassifierCV

ALPHAS = np.logspace(-3, 3, 10)


def _logits(scores: np.ndarray) -> np.ndarray:
    """Ridge decision scores -> per-class logits: a binary ridge gives one score s for the
    second class, which is softmax([-s/2, s/2]) = sigmoid(s)."""
    s = np.asarray(scores, dtype=np.float64)
    s = s.reshape(len(s), -1)
    return np.hstack([-s / 2, s / 2]) if s.shape[1] == 1 else s


def fit_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """The t > 0 minimising the log loss of softmax(t * logits) for labels ``y`` (column
    indices of the logits)."""
    z = _logits(scores)

    def nll(log_t: float) -> float:
        return float(-log_softmax(np.exp(log_t) * z, axis=1)[np.arange(len(z)), y].mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-6.0, 6.0), method="bounded").x))


@dataclass
class MiniRocketControl:
    transformer: object
    ridge: RidgeClassifierCV
    temperature: float
    classes: list[str]

    @staticmethod
    def _panel(X: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(X.transpose(0, 2, 1), dtype=np.float64)  # (N, T, C) -> (N, C, T) for sktime

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(N, T, C) -> (N, K) probabilities in ``self.classes`` order."""
        z = self.temperature * _logits(self.ridge.decision_function(self.transformer.transform(self._panel(X))))
        p = np.exp(log_softmax(z, axis=1))
        out = np.zeros((len(X), len(self.classes)))
        for j, c in enumerate(self.ridge.classes_):
            out[:, self.classes.index(c)] = p[:, j]
        return out

    def predict(self, X: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(X).argmax(axis=1)]


def fit_minirocket(X: np.ndarray, y: list[str], classes: list[str], seed: int,
                   num_kernels: int = 10_000) -> MiniRocketControl:
    from sktime.transformations.rocket import MiniRocketMultivariate  # heavy import, only here

    tr = MiniRocketMultivariate(num_kernels=num_kernels, random_state=seed, n_jobs=1)
    F = tr.fit_transform(MiniRocketControl._panel(X))
    y_arr = np.asarray(y)
    ridge = RidgeClassifierCV(alphas=ALPHAS).fit(F, y_arr)
    # With a scorer, cv_results_ holds leave-one-out decision values (without one, squared errors).
    loo_fit = RidgeClassifierCV(alphas=[ridge.alpha_], scoring="accuracy", store_cv_results=True)
    loo = loo_fit.fit(F, y_arr).cv_results_[:, :, 0]  # (N, n_targets)
    y_col = np.searchsorted(ridge.classes_, y_arr)     # column of each label in the ridge's order
    return MiniRocketControl(tr, ridge, fit_temperature(loo, y_col), list(classes))
