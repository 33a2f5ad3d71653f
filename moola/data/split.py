"""Strict forward-chaining splits, as pure functions of start times, spans and groups.

Rules (each one closes a hole the original left open):
- order is time order (start timestamps), never row order;
- validation is the last ``val_size`` windows; a ``base_window`` group touching validation
  moves wholly into it, so no group straddles the split (validation may grow a little);
- a train window whose span reaches into the validation period is purged, and reported;
- folds > 1 are expanding windows whose validation blocks step back in time; the last fold
  is the default split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moola.core.errors import DataError


@dataclass(frozen=True)
class Fold:
    """One split, as row indices into the original (unsorted) arrays."""

    train: np.ndarray
    val: np.ndarray
    purged: np.ndarray
    val_start: int  # ns: the earliest validation start
    train_end: int  # ns: the latest end of a kept train window (-1 if none)


def val_count(n: int, val_size: int | float) -> int:
    """Number of validation windows for ``n`` rows: an int count or a fraction in (0, 1)."""
    if isinstance(val_size, bool) or not isinstance(val_size, (int, float, np.integer, np.floating)):
        raise DataError(f"val_size: expected an int count or a fraction in (0, 1), found {val_size!r}")
    if isinstance(val_size, (float, np.floating)) and not float(val_size).is_integer():
        if not 0 < val_size < 1:
            raise DataError(f"val_size: a fraction must be in (0, 1), found {val_size}")
        return max(1, int(round(n * float(val_size))))
    k = int(val_size)
    if not 1 <= k < n:
        raise DataError(f"val_size: need 1 <= count < {n} rows, found {k}")
    return k


def forward_chaining_split(starts: np.ndarray, spans: np.ndarray | int, groups: np.ndarray | None,
                           val_size: int | float, folds: int) -> list[Fold]:
    """Expanding-window folds, oldest first; the last one is the default train/val split.

    ``starts`` are int64 ns, ``spans`` the duration of each window in ns (scalar or per row),
    ``groups`` an optional label per row (None/NaN = a group of its own).
    """
    starts = np.asarray(starts, dtype=np.int64)
    n = len(starts)
    spans = np.broadcast_to(np.asarray(spans, dtype=np.int64), (n,))
    if folds < 1:
        raise DataError(f"folds: expected >= 1, found {folds}")
    k = val_count(n, val_size)
    order = np.argsort(starts, kind="stable")
    group_ids = _group_codes(groups, n)
    out = []
    for f in range(folds):
        end = n - (folds - 1 - f) * k  # this fold sees the oldest `end` windows
        if end - k < 1:
            raise DataError(f"folds: {folds} folds of {k} validation windows need more than "
                            f"{folds * k} rows, found {n}")
        out.append(_one_split(order[:end], k, starts, spans, group_ids))
    return out


def _group_codes(groups: np.ndarray | None, n: int) -> np.ndarray:
    """Integer group per row; rows without a group get a unique code."""
    if groups is None:
        return np.arange(n)
    codes = np.empty(n, dtype=np.int64)
    seen: dict[str, int] = {}
    for i, g in enumerate(groups):
        if g is None or (isinstance(g, float) and np.isnan(g)):
            codes[i] = -(i + 1)  # unique, never collides with a real group
        else:
            codes[i] = seen.setdefault(str(g), len(seen))
    return codes


def _one_split(rows: np.ndarray, k: int, starts: np.ndarray, spans: np.ndarray,
               group_ids: np.ndarray) -> Fold:
    """Split ``rows`` (sorted by start) into train / val / purged."""
    s = starts[rows]
    val_start = int(s[len(rows) - k])
    while True:  # pull in every group that touches validation, until nothing moves
        in_val = s >= val_start
        touching = np.isin(group_ids[rows], group_ids[rows][in_val])
        new_start = int(s[touching].min())
        if new_start == val_start:
            break
        val_start = new_start
    val_mask = s >= val_start
    ends = s + spans[rows]
    purge_mask = ~val_mask & (ends > val_start)
    train_mask = ~val_mask & ~purge_mask
    train = rows[train_mask]
    train_end = int(ends[train_mask].max()) if train_mask.any() else -1
    return Fold(train=train, val=rows[val_mask], purged=rows[purge_mask],
                val_start=val_start, train_end=train_end)


def pretrain_mask(starts: np.ndarray, spans: np.ndarray | int, cutoff: int) -> np.ndarray:
    """True for unlabelled windows that end before ``cutoff`` (ns), i.e. safe to pretrain on."""
    starts = np.asarray(starts, dtype=np.int64)
    return starts + np.asarray(spans, dtype=np.int64) <= cutoff
