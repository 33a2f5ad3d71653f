"""Nightly re-validation of the production model (deployment `gates/revalidate`): a sequential
comparison on windows it has never seen.

Each production version keeps a ledger (moola.registry.store: ``ledger/<name>/v<version>.jsonl``) of
the labelled windows that arrived after it was trained: they start at least one window span
after its training data ends, were not among the windows that shipped it, and are counted
once, in time order, a day's windows (one ``base_window`` group) together. Each night the new
windows are scored by production and by two challengers trained strictly before them (on every
labelled window that ends before the night's first new window starts):

- ``minirocket``: the MiniRocket control, retrained: is a fresh model better on new data?
- ``base_rate``: the class shares of those windows: has production lost its skill altogether
  (labels drifted, inputs broke)?

On the ledger's per-group Brier differences (production minus challenger), a test
supermartingale (moola.evaluation.sequential) asks whether production is worse by more than
``Policy.revalidate_margin``; it may be checked every night for the version's whole life at a
total false-alarm chance of ``Policy.revalidate_alpha`` (split over the two challengers).
``revalidation_verdict`` is pure: **degraded** when either test's evidence reaches its
threshold, or production predicts one class over the last MIN_SINGLE_CLASS ledger windows;
otherwise **healthy**, "confidently" when the interval of every difference lies below the
margin, else "not enough evidence yet". The F1 recorded at ship time is shown, never decisive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moola.core.errors import DataError
from moola.data.config import DataConfig
from moola.data.validate import span_ns, validate
from moola.decide.decision import Policy, Rule
from moola.decide.evidence import train_end_ns
from moola.evaluation.sequential import betting_cs, degradation_wealth, nights_to_reach
from moola.evaluation.stats import brier_rows, weighted_f1_rows
from moola.gates.config import DEFAULT_SEED
from moola.gates.predictions import read_predictions
from moola.serve.inference import predict_windows
from moola.train.normalize import fit_normalizer, resolve_method

CHALLENGERS = {"minirocket": "a fresh MiniRocket control", "base_rate": "the class shares (no skill)"}
MIN_SINGLE_CLASS = 20  # ledger windows: one predicted class over this many is an alert on its own
CHALLENGER_SEED = DEFAULT_SEED
CHALLENGER_KERNELS = 2_000  # MiniRocket features: enough for a challenger, a few seconds a night on CPU


@dataclass
class Revalidation:
    healthy: bool
    reasons: list[str]
    rules: list[Rule] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"healthy": self.healthy, "reasons": self.reasons, "rules": [r.__dict__ for r in self.rules],
                "summary": self.summary}


# -- the ledger (pure) -------------------------------------------------------------------------

def fresh_rows(ids, starts: np.ndarray, groups, not_before_ns: int | None, shipped: set[str],
               ledger: list[dict]) -> np.ndarray:
    """Row indices of the windows to count tonight, in time order: they start at or after
    ``not_before_ns`` (production's training end plus one window span), were not in the evidence
    that shipped it, start after the last window already counted, and belong to a group with
    nothing counted yet (a group is counted once, whole, the night it first appears)."""
    ids = np.asarray(ids, dtype=str)
    groups = np.asarray(groups if groups is not None else ids, dtype=str)
    starts = np.asarray(starts, dtype=np.int64)
    counted_ids = {r["window_id"] for r in ledger}
    counted_groups = {r["group"] for r in ledger}
    last = max((int(r["start"]) for r in ledger), default=None)
    keep = np.array([i not in shipped and i not in counted_ids and g not in counted_groups
                     for i, g in zip(ids, groups)], dtype=bool)
    if not_before_ns is not None:
        keep &= starts >= not_before_ns
    if last is not None:
        keep &= starts > last
    rows = np.flatnonzero(keep)
    return rows[np.argsort(starts[rows], kind="stable")]


def group_differences(ledger: list[dict], challenger: str) -> np.ndarray:
    """Per group, in time order: the mean over its windows of production's Brier score minus the
    challenger's (one value per day: windows of one day are not independent)."""
    order: dict[str, list[float]] = {}
    for r in sorted(ledger, key=lambda r: int(r["start"])):
        order.setdefault(r["group"], []).append(r["brier"]["production"] - r["brier"][challenger])
    return np.array([np.mean(v) for v in order.values()], dtype=float)


# -- the verdict (pure) ------------------------------------------------------------------------

def revalidation_verdict(ledger: list[dict], policy: Policy | None = None, recorded_f1: float | None = None) -> Revalidation:
    """Healthy or degraded from every window in production's ledger. See the module docstring."""
    p = policy or Policy()
    delta, alpha = p.revalidate_margin, p.revalidate_alpha / len(CHALLENGERS)
    nights = len({r["night"] for r in ledger})
    groups = len({r["group"] for r in ledger})
    per_night = groups / nights if nights else 0.0
    summary: dict = {"windows": len(ledger), "groups": groups, "nights": nights, "margin": delta,
                     "alpha": p.revalidate_alpha, "threshold": 1 / alpha, "challengers": {}}
    rules, alarms, confident = [], [], bool(ledger)
    for name, what in CHALLENGERS.items():
        x = group_differences(ledger, name)
        path = degradation_wealth(x, delta)
        wealth, peak = (float(path[-1]), float(path.max())) if len(x) else (1.0, 1.0)
        lo, hi = betting_cs(x, p.revalidate_alpha)
        half = (hi - lo) / 2
        summary["challengers"][name] = {
            "mean": float(x.mean()) if len(x) else None, "interval": [lo, hi], "evidence": wealth, "peak": peak,
            "detectable": delta + half,
            "nights_to_margin": nights_to_reach(half, delta, len(x), per_night)}
        worse = peak >= 1 / alpha
        confident &= hi < delta
        mean = f"{x.mean():+.3f}" if len(x) else "none yet"
        rules.append(Rule(f"Brier not worse than {what} by more than {delta} (evidence below {1 / alpha:.0f})",
                          not worse, f"mean difference {mean} over {len(x)} days, {1 - p.revalidate_alpha:.0%} "
                          f"interval [{lo:+.3f}, {hi:+.3f}], evidence {peak:.2f}"))
        if worse:
            alarms.append(f"production's Brier score is worse than {what}'s by more than {delta} on "
                          f"{len(ledger)} windows it never saw (evidence {peak:.1f} >= {1 / alpha:.0f}; "
                          f"mean difference {mean}, interval [{lo:+.3f}, {hi:+.3f}])")
    tail = [r["predicted"] for r in sorted(ledger, key=lambda r: int(r["start"]))[-MIN_SINGLE_CLASS:]]
    single = len(tail) >= MIN_SINGLE_CLASS and len(set(tail)) == 1
    rules.append(Rule(f"predicts more than one class over the last {MIN_SINGLE_CLASS} ledger windows", not single,
                      f"only {tail[0]!r}" if single else (f"{len(set(tail))} classes" if len(tail) >= MIN_SINGLE_CLASS
                                                          else f"{len(tail)} windows so far")))
    if single:
        alarms.append(f"production predicted only {tail[0]!r} on the last {MIN_SINGLE_CLASS} windows")
    f1 = ledger_f1(ledger)
    summary["f1"], summary["recorded_f1"] = f1, recorded_f1
    shown = (f"F1 {f1:.3f} on the ledger's {len(ledger)} windows" if f1 is not None else "no ledger windows yet") + (
        f" (recorded {recorded_f1:.3f} when it shipped, on other windows)" if recorded_f1 is not None else "")
    rules.append(Rule("F1 on the ledger (shown only)", True, shown))
    if alarms:
        return Revalidation(False, alarms, rules, {**summary, "status": "degraded"})
    if not ledger:
        return Revalidation(True, ["healthy: not enough evidence yet (no window has arrived since production "
                                   "was trained)"], rules, {**summary, "status": "no evidence"})
    mr = summary["challengers"]["minirocket"]
    if confident:
        head = "healthy, confidently: every interval lies below the margin"
    else:
        wait = mr["nights_to_margin"]
        head = ("healthy: not enough evidence yet to call it either way; today a difference above "
                f"{mr['detectable']:.3f} would show" + (f"; about {wait} more nights to resolve {delta}" if wait else ""))
    return Revalidation(True, [f"{head} ({len(ledger)} windows, {groups} days, {shown})"], rules,
                        {**summary, "status": "confident" if confident else "not enough evidence"})


def ledger_f1(ledger: list[dict]) -> float | None:
    if not ledger:
        return None
    classes = sorted({r["label"] for r in ledger} | {r["predicted"] for r in ledger})
    y = np.array([classes.index(r["label"]) for r in ledger])
    pred = np.array([classes.index(r["predicted"]) for r in ledger])
    return float(weighted_f1_rows(y, pred, len(classes), np.ones((1, len(y))))[0])


# -- tonight's windows (reads the data, runs the models) ---------------------------------------

def score_night(folder: Path, card: dict, data: Path, ledger: list[dict], night: str, data_config=None,
                device: str = "cpu", expected_manifest_sha256: str | None = None) -> tuple[list[dict], list[str]]:
    """Ledger rows for the windows of ``data`` that count tonight (``fresh_rows``), scored by
    production and by each challenger; and notes. Raises DataError when the data fails Gate 0 or
    does not fit the model (the registry and the ledger are then untouched)."""
    cfg = data_config or DataConfig()
    rep = validate(data, None, cfg)
    rep.raise_if_invalid()
    lab = rep.labeled
    span = span_ns(lab, cfg)
    end, basis = train_end_ns(card)
    notes = []
    if end is None:
        notes.append(f"production's training end is not comparable ({basis}): windows are counted from the "
                     "first night on, some of which it may have trained on")
    shipped_file = folder / "predictions.parquet"
    shipped = set(read_predictions(shipped_file)["window_id"].astype(str)) if shipped_file.is_file() else set()
    rows = fresh_rows(lab.ids, lab.starts, lab.groups, None if end is None else end + span, shipped, ledger)
    if not len(rows):
        return [], notes + ["no new labelled window tonight"]
    proba, classes = predict_windows(folder, lab.X[rows], str(data), device, expected_manifest_sha256)
    unknown = sorted(set(lab.labels[rows].tolist()) - set(classes))
    if unknown:
        raise DataError(f"{data}: column 'label': class(es) {', '.join(map(repr, unknown))} unknown to the "
                        f"model (it knows {', '.join(classes)})")
    before = np.flatnonzero(lab.starts + span <= lab.starts[rows].min())
    challengers = challenger_proba(lab.X[before], lab.labels[before].tolist(), lab.X[rows], classes)
    y = np.array([classes.index(c) for c in lab.labels[rows]])
    briers = {"production": brier_rows(y, proba), **{n: brier_rows(y, q) for n, q in challengers.items()}}
    groups = lab.groups if lab.groups is not None else lab.ids
    out = [{"window_id": str(lab.ids[r]), "start": int(lab.starts[r]), "group": str(groups[r]),
            "label": str(lab.labels[r]), "predicted": classes[int(proba[j].argmax())], "night": night,
            "brier": {n: float(b[j]) for n, b in briers.items()}, "challengers_trained_on": int(len(before))}
           for j, r in enumerate(rows)]
    return out, notes + [f"{len(out)} new windows ({len({o['group'] for o in out})} days); the challengers "
                         f"trained on the {len(before)} labelled windows before them"]


def challenger_proba(X_train: np.ndarray, y_train: list[str], X_new: np.ndarray, classes: list[str]) -> dict:
    """Each challenger's probabilities on ``X_new`` (columns in ``classes`` order), trained on
    the windows before them. MiniRocket needs both classes in train; without, it sits out."""
    shares = np.array([y_train.count(c) for c in classes], dtype=float) + 1.0  # add-one: no zero shares
    out = {"base_rate": np.tile(shares / shares.sum(), (len(X_new), 1))}
    if len(set(y_train)) < 2:
        out["minirocket"] = out["base_rate"]
        return out
    from moola.models.minirocket import fit_minirocket
    norm = fit_normalizer(X_train, resolve_method("auto", X_train.shape[2]))
    model = fit_minirocket(norm.transform(X_train), y_train, list(classes), CHALLENGER_SEED, CHALLENGER_KERNELS)
    out["minirocket"] = model.predict_proba(norm.transform(X_new))
    return out


def read_card(folder: Path) -> dict:
    path = folder / "card.json"
    return json.loads(path.read_text()) if path.is_file() else {}
