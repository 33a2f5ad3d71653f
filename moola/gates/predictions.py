"""A gate's predictions: ``predictions.parquet`` (every fold's validation windows, in time order)
read back as one model's class probabilities on a list of windows (Scored), the form every
paired comparison takes (a gate against --baseline, the decision, re-validation)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from moola.core.errors import DataError
from moola.gates.result import GateResult


@dataclass(frozen=True)
class Scored:
    """One model's class probabilities on a list of windows; ``y`` indexes ``classes``."""

    ids: tuple[str, ...]
    y: np.ndarray
    proba: np.ndarray
    classes: tuple[str, ...]
    positive: int | None = None
    groups: tuple[str, ...] | None = None  # the data's base_window per window: resampled together

    def subset(self, ids: tuple[str, ...]) -> "Scored":
        """These predictions on ``ids``, in that order (every id must be here)."""
        where = {w: i for i, w in enumerate(self.ids)}
        rows = np.array([where[w] for w in ids], dtype=int)
        groups = tuple(np.array(self.groups)[rows]) if self.groups is not None else None
        return Scored(tuple(ids), self.y[rows], self.proba[rows], self.classes, self.positive, groups)

    def with_groups(self, group_of: dict[str, str]) -> "Scored":
        """These predictions with each window's group (its own id when ``group_of`` lacks it)."""
        return Scored(self.ids, self.y, self.proba, self.classes, self.positive,
                      tuple(str(group_of.get(i, i)) for i in self.ids))


def read_predictions(path: Path) -> pd.DataFrame:
    """A gate's predictions.parquet (or its folder) as a DataFrame; one clear error otherwise."""
    p = path / "predictions.parquet" if path.is_dir() else path
    try:
        df = pd.read_parquet(p)
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: cannot read predictions ({exc})") from exc
    missing = [c for c in ("window_id", "label", "predicted") if c not in df.columns]
    if missing:
        raise DataError(f"{p}: missing column(s) {', '.join(missing)}; expected a gate's predictions.parquet")
    return df


def gate_scored(folder: Path, result: GateResult | None = None) -> Scored:
    """A gate's predictions.parquet (every fold's validation windows) as Scored: its classes and
    positive class from ``result`` (else the file's probability columns, no positive class)."""
    df = read_predictions(Path(folder))
    classes = tuple((result.metrics.classes if result is not None and result.metrics is not None else None) or
                    sorted(c[len("proba_"):] for c in df.columns if c.startswith("proba_")))
    positive = result.data.get("positive_class") if result is not None else None
    index = {c: i for i, c in enumerate(classes)}
    missing = [f"proba_{c}" for c in classes if f"proba_{c}" not in df.columns]
    unknown = sorted(set(df["label"].astype(str)) - set(classes))
    if missing or unknown or not classes:
        raise DataError(f"{folder}: predictions lack column(s) {', '.join(missing) or 'proba_*'}" if missing or not classes
                        else f"{folder}: label(s) {', '.join(unknown)} have no probability column")
    return Scored(tuple(df["window_id"].astype(str)), np.array([index[c] for c in df["label"]]),
                  df[[f"proba_{c}" for c in classes]].to_numpy(dtype=np.float64), classes,
                  index.get(positive))
