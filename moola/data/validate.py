"""Gate 0: check labelled (and unlabelled) windows against the contract and split them.

``validate`` never raises on bad data: it returns a report whose checks each list their
problems, one line per problem. The CLI prints them and exits 2 when any check failed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moola.core.errors import DataError
from moola.data.config import DataConfig
from moola.data.load import MAX_LINES_PER_CHECK, load_windows
from moola.data.schema import MIN_TIMEPOINTS, Windows, channel_names, is_ohlc
from moola.data.split import Fold, forward_chaining_split, pretrain_mask


@dataclass
class Check:
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class ValidationReport:
    config: DataConfig
    labeled: Windows
    unlabeled: Windows | None = None
    checks: list[Check] = field(default_factory=list)
    folds: list[Fold] = field(default_factory=list)
    pretrain_keep: np.ndarray | None = None  # mask over unlabeled rows

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def problems(self) -> list[str]:
        return [p for c in self.checks for p in c.problems]

    @property
    def split(self) -> Fold:
        return self.folds[-1]

    def raise_if_invalid(self) -> None:
        if not self.ok:
            raise DataError(self.problems)


def validate(data: str | Path, unlabeled: str | Path | None = None,
             config: DataConfig | None = None) -> ValidationReport:
    """Run every Gate 0 check; the report lists each check and its problems."""
    cfg = config or DataConfig()
    lab = load_windows(data, labeled=True, assume_row_order=cfg.assume_row_order,
                       bar_seconds=cfg.bar_seconds)
    rep = ValidationReport(config=cfg, labeled=lab)
    rep.checks.append(Check("labeled file loads and matches the schema", list(lab.problems)))
    if lab.X is not None:
        rep.checks.append(_check_shape(lab))
        rep.checks.append(_check_ohlc(lab, cfg))
    if lab.labels is not None:
        rep.checks.append(_check_classes(lab))
    if lab.complete():
        _check_split(rep)
    if unlabeled is not None:
        _check_unlabeled(rep, unlabeled)
    return rep


def span_ns(w: Windows, cfg: DataConfig) -> int:
    return w.X.shape[1] * cfg.bar_seconds * 1_000_000_000


def _check_shape(w: Windows) -> Check:
    T, C = w.shape
    c = Check("series are long enough")
    if T < MIN_TIMEPOINTS:
        c.problems.append(f"{w.path.name}: column 'features': windows have T={T} time steps; "
                          f"need T >= {MIN_TIMEPOINTS} (MiniRocket's minimum); zero-pad shorter series")
    return c


def _check_ohlc(w: Windows, cfg: DataConfig) -> Check:
    c = Check("OHLC bars are consistent")
    names = channel_names(w.shape[1], cfg.channels)
    if len(names) != w.shape[1]:
        c.problems.append(f"{w.path.name}: configured channels {names} do not match C={w.shape[1]}")
        return c
    if not is_ohlc(names):
        return c
    o, h, lo, cl = (w.X[:, :, i] for i in range(4))
    tol = 1e-9 * np.maximum(1.0, np.abs(h))
    bad_high = h + tol < np.maximum(o, cl)
    bad_low = lo - tol > np.minimum(o, cl)
    bad = bad_high | bad_low
    rows = np.flatnonzero(bad.any(axis=1))
    for r in rows[:MAX_LINES_PER_CHECK]:
        t = int(np.flatnonzero(bad[r])[0])
        what = (f"high {h[r, t]:g} < max(open {o[r, t]:g}, close {cl[r, t]:g})" if bad_high[r, t]
                else f"low {lo[r, t]:g} > min(open {o[r, t]:g}, close {cl[r, t]:g})")
        c.problems.append(f"{w.path.name}: window_id {w.ids[r]!r}: OHLC inconsistent at time step {t}: "
                          f"{what} ({int(bad[r].sum())} bad bars in this window)")
    if len(rows) > MAX_LINES_PER_CHECK:
        c.problems.append(f"{w.path.name}: ... and {len(rows) - MAX_LINES_PER_CHECK} more windows "
                          "with inconsistent OHLC bars")
    return c


def _check_classes(w: Windows) -> Check:
    c = Check("at least two classes")
    counts = Counter(x for x in w.labels if x is not None)
    if len(counts) < 2:
        found = ", ".join(f"{k!r} x{v}" for k, v in counts.items()) or "none"
        c.problems.append(f"{w.path.name}: column 'label': need at least 2 classes, found {found}")
    return c


def _check_split(rep: ValidationReport) -> None:
    lab, cfg = rep.labeled, rep.config
    c = Check("forward-chaining split is possible")
    rep.checks.append(c)
    try:
        rep.folds = forward_chaining_split(lab.starts, span_ns(lab, cfg), lab.groups,
                                           cfg.val_size, cfg.folds)
    except DataError as exc:
        c.problems.extend(f"{lab.path.name}: {p}" for p in exc.problems)
        return
    enough, classes, dupes, order = (Check("enough train windows after purging"),
                                     Check("every validation class is in train"),
                                     Check("no identical windows across the split"),
                                     Check("train ends before validation starts"))
    rep.checks += [enough, classes, dupes, order]
    digests = np.array([hashlib.blake2b(x.tobytes(), digest_size=16).digest() for x in lab.X])
    for i, f in enumerate(rep.folds):
        tag = f"fold {i + 1}/{len(rep.folds)}: " if len(rep.folds) > 1 else ""
        if len(f.train) < cfg.min_train:
            enough.problems.append(f"{lab.path.name}: {tag}{len(f.train)} train windows left after "
                                   f"purging {len(f.purged)}; need >= {cfg.min_train} (use a smaller "
                                   "val_size or fewer folds)")
        train_counts = Counter(lab.labels[f.train])
        for cls, n_val in sorted(Counter(lab.labels[f.val]).items()):
            if train_counts.get(cls, 0) < cfg.min_train_per_class:
                classes.problems.append(
                    f"{lab.path.name}: {tag}column 'label': class {cls!r} has {n_val} validation windows "
                    f"but {train_counts.get(cls, 0)} train windows; need >= {cfg.min_train_per_class}")
        train_digest = {d: r for d, r in zip(digests[f.train], f.train)}
        for r in f.val:
            if digests[r] in train_digest:
                dupes.problems.append(
                    f"{lab.path.name}: {tag}window_id {lab.ids[r]!r} (validation) has the same "
                    f"features as window_id {lab.ids[train_digest[digests[r]]]!r} (train): a leak")
        if len(f.train) and f.train_end > f.val_start:
            order.problems.append(f"{lab.path.name}: {tag}train ends after validation starts")
    if len(dupes.problems) > MAX_LINES_PER_CHECK:
        extra = len(dupes.problems) - MAX_LINES_PER_CHECK
        dupes.problems[MAX_LINES_PER_CHECK:] = [f"{lab.path.name}: ... and {extra} more duplicated windows"]


def _check_unlabeled(rep: ValidationReport, path: str | Path) -> None:
    cfg = rep.config
    un = load_windows(path, labeled=False, assume_row_order=cfg.assume_row_order,
                      bar_seconds=cfg.bar_seconds)
    rep.unlabeled = un
    c = Check("unlabeled file loads and matches the schema", list(un.problems))
    rep.checks.append(c)
    if un.X is None:
        return
    if rep.labeled.X is not None and un.shape != rep.labeled.shape:
        c.problems.append(f"{un.path.name}: column 'features': windows are T x C = {un.shape[0]} x "
                          f"{un.shape[1]}, the labelled ones {rep.labeled.shape[0]} x "
                          f"{rep.labeled.shape[1]}; they must match")
    ohlc = _check_ohlc(un, cfg)
    ohlc.name = "unlabeled OHLC bars are consistent"
    rep.checks.append(ohlc)
    if not rep.folds or un.starts is None:
        return
    cutoff = min(f.val_start for f in rep.folds)  # strictest: before the earliest validation fold
    rep.pretrain_keep = pretrain_mask(un.starts, span_ns(un, cfg), cutoff)
    if not rep.pretrain_keep.any():
        rep.checks.append(Check("unlabeled windows precede validation", [
            f"{un.path.name}: all {un.n} unlabelled windows reach into the validation period; "
            "pretraining needs windows that end before it"]))
