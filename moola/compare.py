"""``moola compare``: a paired bootstrap of two models' predictions on the same windows."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError, DataError

MIN_BOOT = 100


def read_predictions(path: Path):
    """A gate's predictions.parquet (or its folder) as a DataFrame; one clear error otherwise."""
    import pandas as pd
    p = path / "predictions.parquet" if path.is_dir() else path
    try:
        df = pd.read_parquet(p)
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: cannot read predictions ({exc})") from exc
    missing = [c for c in ("window_id", "label", "predicted") if c not in df.columns]
    if missing:
        raise DataError(f"{p}: missing column(s) {', '.join(missing)}; expected a gate's predictions.parquet")
    return df


def compare_predictions(a_path: Path, b_path: Path, n_boot: int = 2000, seed: int = 0) -> dict:
    """Paired bootstrap of B - A (accuracy and weighted F1) over the windows both predicted."""
    from .metrics import paired_bootstrap
    if n_boot < MIN_BOOT:
        raise ConfigError(f"--n-boot {n_boot}: need at least {MIN_BOOT} resamples for a confidence interval")
    a, b = read_predictions(a_path), read_predictions(b_path)
    merged = a.merge(b, on="window_id", suffixes=("_a", "_b"))
    if len(merged) != len(a) or len(merged) != len(b):
        raise DataError(f"{a_path} and {b_path} do not cover the same windows "
                        f"({len(a)} and {len(b)} rows, {len(merged)} in common)")
    if (merged["label_a"] != merged["label_b"]).any():
        raise DataError("the two predictions files disagree on true labels")
    return paired_bootstrap(merged["label_a"].tolist(), merged["predicted_a"].tolist(),
                            merged["predicted_b"].tolist(), n_boot, seed)
