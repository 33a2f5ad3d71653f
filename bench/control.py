"""Why the MiniRocket control scored below its published accuracy (issue 12), step by step.

    .venv/bin/python bench/control.py [--datasets ArrowHead GunPoint ItalyPowerDemand] [--states 0 1 2]

On each UCR set's official split, per random state: sktime MiniRocket + RidgeClassifierCV on the
raw features (the reference recipe); the same with a StandardScaler in between; the earlier
control (scaler, then predictions from a logistic regression fitted to the ridge's leave-one-out
scores: Platt scaling, which can move the argmax); and moola's control now
(moola/models/minirocket.py: no scaler, one temperature, the ridge's own argmax). Inputs are the
per-window z-scores the gates feed it. Prints test accuracy per state and the mean.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.preprocessing import StandardScaler

from moola.models.minirocket import ALPHAS, fit_minirocket
from moola.train.normalize import per_window


def load(name: str):
    import sktime.datasets as ds
    loader = {"ArrowHead": ds.load_arrow_head, "GunPoint": ds.load_gunpoint,
              "ItalyPowerDemand": ds.load_italy_power_demand}[name]
    (Xtr, ytr), (Xte, yte) = (loader(split=s, return_type="numpy3D") for s in ("train", "test"))
    z = lambda X: per_window(X.transpose(0, 2, 1), "zscore").astype(np.float32)  # noqa: E731  (N, T, C)
    return z(Xtr), np.asarray(ytr), z(Xte), np.asarray(yte)


def variants(Xtr, ytr, Xte, yte, state: int) -> dict[str, float]:
    from sktime.transformations.rocket import MiniRocketMultivariate
    panel = lambda X: np.ascontiguousarray(X.transpose(0, 2, 1), dtype=np.float64)  # noqa: E731
    tr = MiniRocketMultivariate(num_kernels=10_000, random_state=state, n_jobs=1)
    F, G = tr.fit_transform(panel(Xtr)), tr.transform(panel(Xte))
    out = {"raw features + ridge": (RidgeClassifierCV(alphas=ALPHAS).fit(F, ytr).predict(G) == yte).mean()}
    sc = StandardScaler().fit(F)
    Fs, Gs = sc.transform(F), sc.transform(G)
    ridge = RidgeClassifierCV(alphas=ALPHAS).fit(Fs, ytr)
    out["scaler + ridge"] = (ridge.predict(Gs) == yte).mean()
    loo = RidgeClassifierCV(alphas=[ridge.alpha_], scoring="accuracy", store_cv_results=True)
    loo = loo.fit(Fs, ytr).cv_results_[:, :, 0]
    platt = LogisticRegression(C=1.0, max_iter=1000).fit(loo, ytr)
    scores = ridge.decision_function(Gs).reshape(len(Gs), -1)
    out["scaler + ridge + Platt argmax (before)"] = (platt.predict(scores) == yte).mean()
    classes = sorted(set(ytr))
    m = fit_minirocket(Xtr, list(ytr), classes, state)
    out["moola now"] = (np.array(m.predict(Xte)) == yte).mean()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["ArrowHead", "GunPoint", "ItalyPowerDemand"])
    ap.add_argument("--states", nargs="+", type=int, default=[0, 1, 2])
    args = ap.parse_args()
    print("| dataset | variant | accuracy per random state | mean |")
    print("|---|---|---|---|")
    for name in args.datasets:
        data = load(name)
        rows: dict[str, list[float]] = {}
        for s in args.states:
            for k, v in variants(*data, s).items():
                rows.setdefault(k, []).append(float(v))
        for k, accs in rows.items():
            print(f"| {name} | {k} | {' / '.join(f'{a:.3f}' for a in accs)} | {statistics.mean(accs):.3f} |", flush=True)


if __name__ == "__main__":
    main()
