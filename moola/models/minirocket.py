"""Gate 2's control: sktime MiniRocket + StandardScaler + RidgeClassifierCV.

Fitted step by step, outside an sklearn Pipeline (sktime transformers break inside a
scikit-learn 1.9 Pipeline). It sees the same per-window normalised inputs as the LSTM, so the
comparison is about the model, not the preprocessing.

Probabilities: the ridge's exact leave-one-out decision scores on the *train* windows (a
second RidgeClassifierCV at the chosen alpha with a scorer and ``store_cv_results``, which
then stores per-sample LOO predictions) are fed to a logistic regression (Platt scaling);
that calibrator maps validation scores to probabilities, and predictions are their argmax.
Nothing about validation data is used to fit any part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.preprocessing import StandardScaler

ALPHAS = np.logspace(-3, 3, 10)


@dataclass
class MiniRocketControl:
    transformer: object
    scaler: StandardScaler
    ridge: RidgeClassifierCV
    calibrator: LogisticRegression
    classes: list[str]

    @staticmethod
    def _panel(X: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(X.transpose(0, 2, 1), dtype=np.float64)  # (N, T, C) -> (N, C, T) for sktime

    def _scores(self, X: np.ndarray) -> np.ndarray:
        F = self.scaler.transform(self.transformer.transform(self._panel(X)))
        s = self.ridge.decision_function(F)
        return s.reshape(len(X), -1)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(N, T, C) -> (N, K) probabilities in ``self.classes`` order."""
        p = self.calibrator.predict_proba(self._scores(X))
        out = np.zeros((len(X), len(self.classes)))
        for j, c in enumerate(self.calibrator.classes_):
            out[:, int(c)] = p[:, j]
        return out

    def predict(self, X: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(X).argmax(axis=1)]


def fit_minirocket(X: np.ndarray, y: list[str], classes: list[str], seed: int,
                   num_kernels: int = 10_000) -> MiniRocketControl:
    from sktime.transformations.rocket import MiniRocketMultivariate  # heavy import, only here

    tr = MiniRocketMultivariate(num_kernels=num_kernels, random_state=seed, n_jobs=1)
    F = tr.fit_transform(MiniRocketControl._panel(X))
    scaler = StandardScaler().fit(F)
    F = scaler.transform(F)
    ridge = RidgeClassifierCV(alphas=ALPHAS).fit(F, np.asarray(y))
    # With a scorer, cv_results_ holds leave-one-out decision values (without one, squared errors).
    loo_fit = RidgeClassifierCV(alphas=[ridge.alpha_], scoring="accuracy", store_cv_results=True)
    loo = loo_fit.fit(F, np.asarray(y)).cv_results_[:, :, 0]  # (N, n_targets)
    y_idx = np.array([classes.index(c) for c in y])
    calibrator = LogisticRegression(C=1.0, max_iter=1000).fit(loo, y_idx)
    return MiniRocketControl(tr, scaler, ridge, calibrator, list(classes))
