"""Read a Parquet file of windows into :class:`Windows`, collecting every problem found.

Loading never stops at the first problem: Gate 0 must report them all, one line each,
naming the file, the window_id and the column. Features are decoded with pyarrow's
list kernels (no per-row Python), so 100,000 windows load in a second or two.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from moola.core.files import sha256_file
from moola.data.schema import REQUIRED_LABELED, REQUIRED_UNLABELED, Windows

MAX_LINES_PER_CHECK = 20  # beyond this a check summarises ("... and N more")


class _Problems:
    """Collects problem lines for one file, capping each kind so huge files stay readable."""

    def __init__(self, path: Path):
        self.path = path
        self.lines: list[str] = []

    def add(self, msg: str) -> None:
        self.lines.append(f"{self.path.name}: {msg}")

    def per_row(self, ids: np.ndarray, rows: np.ndarray, msg_for_row) -> None:
        rows = np.asarray(rows)
        for r in rows[:MAX_LINES_PER_CHECK]:
            self.add(f"window_id {_id(ids, r)}: {msg_for_row(r)}")
        if len(rows) > MAX_LINES_PER_CHECK:
            self.add(f"... and {len(rows) - MAX_LINES_PER_CHECK} more rows with the same problem")


def _id(ids: np.ndarray | None, row: int) -> str:
    if ids is None or ids[row] is None:
        return f"(row {row})"
    return repr(str(ids[row]))


def load_windows(path: str | Path, labeled: bool = True, assume_row_order: bool = False,
                 bar_seconds: int | None = None) -> Windows:
    """Load windows from ``path``. Problems land in ``.problems``; nothing raises on bad data."""
    path = Path(path)
    probs = _Problems(path)
    if not path.is_file():
        w = Windows(path=path, sha256="")
        w.problems.append(f"{path}: file not found")
        return w
    w = Windows(path=path, sha256=sha256_file(path), assumed_row_order=assume_row_order)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        w.problems.append(f"{path.name}: not a readable Parquet file ({_short(exc)})")
        return w

    required = REQUIRED_LABELED if labeled else REQUIRED_UNLABELED
    if assume_row_order:
        required = tuple(c for c in required if c != "timestamp")
    for col in required:
        if col not in table.column_names:
            hint = ""
            if col == "timestamp":
                hint = ("; files in the original layout (no timestamps) need --assume-row-order, "
                        "which trusts row order as time order")
            probs.add(f"missing required column '{col}' (found columns: "
                      f"{', '.join(table.column_names) or 'none'}){hint}")
    if table.num_rows == 0:
        probs.add("the file has no rows")
    if probs.lines:
        w.problems = probs.lines
        return w

    w.ids = _string_column(table, "window_id", probs, allow_null=False)
    if w.ids is not None:
        dup = [k for k, v in Counter(w.ids.tolist()).items() if v > 1]
        for k in dup[:MAX_LINES_PER_CHECK]:
            rows = np.flatnonzero(w.ids == k)
            probs.add(f"window_id {k!r}: duplicated in rows {rows.tolist()[:5]}; window_id must be unique")
    if labeled:
        w.labels = _string_column(table, "label", probs, allow_null=False, ids=w.ids)
    if "base_window" in table.column_names:
        w.groups = _string_column(table, "base_window", probs, allow_null=True, ids=w.ids)
    w.X = _features(table, probs, w.ids)
    if assume_row_order and "timestamp" not in table.column_names:
        # Row order is all we have: space windows one span apart so that none overlap.
        if bar_seconds is None:
            raise ValueError("load_windows(assume_row_order=True) needs bar_seconds (DataConfig owns its default)")
        span_ns = (w.X.shape[1] if w.X is not None else 1) * bar_seconds * 1_000_000_000
        w.starts = np.arange(table.num_rows, dtype=np.int64) * span_ns
    else:
        w.starts = _timestamps(table, probs, w.ids)
    if w.X is not None and any(c in table.column_names for c in ("expansion_start", "expansion_end")):
        w.expansion = _expansion(table, probs, w.ids, w.X.shape[1])
    w.problems = probs.lines
    return w


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _string_column(table: pa.Table, name: str, probs: _Problems, allow_null: bool,
                   ids: np.ndarray | None = None) -> np.ndarray | None:
    col = table.column(name)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
            or pa.types.is_dictionary(col.type) and pa.types.is_string(col.type.value_type)):
        probs.add(f"column '{name}': expected strings, found {col.type}")
        return None
    values = np.array(col.to_pylist(), dtype=object)
    if not allow_null:
        nulls = np.flatnonzero(pd.isna(values))
        if len(nulls):
            probs.per_row(ids, nulls, lambda r: f"column '{name}' is null; every row needs a {name}")
            return None if name == "window_id" else values
    return values


def _timestamps(table: pa.Table, probs: _Problems, ids: np.ndarray | None) -> np.ndarray | None:
    col = table.column("timestamp")
    t = col.type
    if pa.types.is_timestamp(t):
        ser = col.to_pandas()
        ser = ser.dt.tz_convert("UTC") if ser.dt.tz is not None else ser.dt.tz_localize("UTC")
    elif pa.types.is_date(t):
        ser = pd.to_datetime(col.to_pandas()).dt.tz_localize("UTC")
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        raw = col.to_pandas()
        ser = pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce")
        for i in np.flatnonzero(ser.isna().to_numpy() & raw.notna().to_numpy()):
            ser.iloc[i] = _parse_one(raw.iloc[i])  # other formats, one value at a time
    else:
        probs.add(f"column 'timestamp': expected a timestamp (or ISO-8601 string), found {t}")
        return None
    bad = np.flatnonzero(ser.isna().to_numpy())
    if len(bad):
        raw = col.to_pylist()
        probs.per_row(ids, bad, lambda r: f"column 'timestamp': cannot parse {raw[r]!r} as a time "
                                          "(expected e.g. '2025-03-03T14:30:00Z')")
        return None
    return ser.dt.as_unit("ns").astype("int64").to_numpy()


def _parse_one(text: str):
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    if ts is pd.NaT:
        return ts
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _features(table: pa.Table, probs: _Problems, ids: np.ndarray | None) -> np.ndarray | None:
    col = table.column("features").combine_chunks()
    if isinstance(col, pa.ChunkedArray):  # an empty table keeps it chunked
        col = pa.concat_arrays(col.chunks) if col.num_chunks else pa.array([], col.type)
    if not (_is_list(col.type) and _is_list(col.type.value_type)):
        probs.add(f"column 'features': expected a nested list T x C of floats, found {col.type}")
        return None
    vtype = col.type.value_type.value_type
    if not (pa.types.is_floating(vtype) or pa.types.is_integer(vtype)):
        probs.add(f"column 'features': expected numbers inside the nested lists, found {vtype}")
        return None
    n = len(col)
    n_problems = len(probs.lines)

    null_rows = np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))
    probs.per_row(ids, null_rows, lambda r: "column 'features' is null")
    lengths = pc.list_value_length(col).fill_null(-1).to_numpy()
    T = _mode(lengths[lengths >= 0])
    ragged_t = np.flatnonzero((lengths != T) & (lengths >= 0))
    probs.per_row(ids, ragged_t, lambda r: f"column 'features': {lengths[r]} time steps, "
                                           f"expected {T} like most rows (all windows need the same T)")

    bars = col.flatten()  # skips null rows, so map bars back to rows by parent index
    bar_row = pc.list_parent_indices(col).to_numpy()
    bar_null = bars.is_null().to_numpy(zero_copy_only=False)
    probs.per_row(ids, np.unique(bar_row[bar_null]),
                  lambda r: "column 'features': a time step is null")
    widths = pc.list_value_length(bars).fill_null(-1).to_numpy()
    C = _mode(widths[widths >= 0])
    ragged_c = np.unique(bar_row[(widths != C) & (widths >= 0)])
    probs.per_row(ids, ragged_c, lambda r: f"column 'features': time steps with a channel count "
                                           f"other than {C} (all windows need the same C)")
    if len(probs.lines) > n_problems:
        return None

    values = bars.flatten()
    val_null = values.is_null().to_numpy(zero_copy_only=False)
    X = values.fill_null(np.nan).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    X = X.reshape(n, T, C)
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=(1, 2)))

        def where(r: int) -> str:
            t, c = np.argwhere(bad[r])[0]
            what = "null" if val_null.reshape(n, T, C)[r, t, c] else repr(float(X[r, t, c]))
            return (f"column 'features': expected finite floats, found {what} at time step {t}, "
                    f"channel {c} ({int(bad[r].sum())} non-finite values in this window)")
        probs.per_row(ids, rows, where)
        return None
    return X


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _mode(a: np.ndarray) -> int:
    if len(a) == 0:
        return 0
    vals, counts = np.unique(a, return_counts=True)
    return int(vals[np.argmax(counts)])


def _expansion(table: pa.Table, probs: _Problems, ids: np.ndarray | None, T: int) -> np.ndarray | None:
    out = np.full((table.num_rows, 2), -1, dtype=np.int64)
    for j, name in enumerate(("expansion_start", "expansion_end")):
        if name not in table.column_names:
            continue
        col = table.column(name)
        if not pa.types.is_integer(col.type):
            probs.add(f"column '{name}': expected integers in [0, {T}), found {col.type}")
            return None
        v = col.to_pandas().to_numpy(dtype=float, na_value=np.nan)
        out_of_range = np.flatnonzero(~np.isnan(v) & ((v < 0) | (v >= T)))
        probs.per_row(ids, out_of_range,
                      lambda r, v=v, name=name: f"column '{name}': {int(v[r])} is outside [0, {T})")
        out[:, j] = np.where(np.isnan(v), -1, v).astype(np.int64)
    both = (out[:, 0] >= 0) & (out[:, 1] >= 0)
    backwards = np.flatnonzero(both & (out[:, 1] < out[:, 0]))
    probs.per_row(ids, backwards, lambda r: f"expansion_end {out[r, 1]} is before "
                                            f"expansion_start {out[r, 0]}")
    return out
