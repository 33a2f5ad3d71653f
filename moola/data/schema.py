"""The data contract: what a file of windows must hold, and the in-memory form after loading.

Labelled windows (Parquet, one row per window):
    window_id        string, unique, non-null
    timestamp        time of the window's first bar; tz-aware (normalised to UTC) or naive (UTC)
    label            string, non-null
    features         nested list T x C of finite floats, the same T and C for every row
    base_window      optional string: rows sharing it form one group that never straddles a split
    expansion_start  optional integer in [0, T)
    expansion_end    optional integer in [0, T), >= expansion_start

Unlabelled windows (for pretraining): window_id, timestamp, features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REQUIRED_LABELED = ("window_id", "timestamp", "label", "features")
REQUIRED_UNLABELED = ("window_id", "timestamp", "features")
OPTIONAL_COLUMNS = ("base_window", "expansion_start", "expansion_end")
OHLC = ("open", "high", "low", "close")
MIN_TIMEPOINTS = 9  # MiniRocket's smallest dilation needs 9 time points


@dataclass
class Windows:
    """Windows loaded from one file, in file row order.

    ``starts`` are int64 nanoseconds since the Unix epoch (UTC). ``X`` is (N, T, C) float64.
    Fields that failed to load are None; ``problems`` says why.
    """

    path: Path
    sha256: str
    ids: np.ndarray | None = None
    starts: np.ndarray | None = None
    X: np.ndarray | None = None
    labels: np.ndarray | None = None
    groups: np.ndarray | None = None
    expansion: np.ndarray | None = None  # (N, 2) int64, -1 where absent
    assumed_row_order: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return 0 if self.ids is None else len(self.ids)

    @property
    def shape(self) -> tuple[int, int] | None:
        """(T, C) when the features loaded, else None."""
        return None if self.X is None else (self.X.shape[1], self.X.shape[2])

    def complete(self) -> bool:
        return not self.problems and self.X is not None and self.starts is not None


def channel_names(n_channels: int, configured: list[str] | None) -> list[str]:
    """Channel names: configured ones, OHLC for 4 channels, else c0..c{C-1}."""
    if configured:
        return list(configured)
    if n_channels == 4:
        return list(OHLC)
    return [f"c{i}" for i in range(n_channels)]


def is_ohlc(names: list[str]) -> bool:
    return [n.lower() for n in names] == list(OHLC)
