"""The data manifest: what Gate 0 saw and decided, so any later result can be traced to it."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from moola import __version__
from moola.core.files import write_json_atomic
from moola.data.validate import ValidationReport, span_ns


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _range(starts: np.ndarray, span: int) -> list[str] | None:
    if len(starts) == 0:
        return None
    return [_iso(int(starts.min())), _iso(int(starts.max()) + span)]


def build_manifest(rep: ValidationReport) -> dict:
    """A JSON-ready dict: inputs (sha256), checks, and every split by window_id."""
    lab, cfg = rep.labeled, rep.config
    m: dict = {
        "moola_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "valid": rep.ok,
        "config": cfg.model_dump(),
        "assumed_row_order": cfg.assume_row_order,
        "files": {"labeled": {"path": str(lab.path), "sha256": lab.sha256, "rows": lab.n}},
        "checks": [{"name": c.name, "passed": c.passed, "problems": c.problems} for c in rep.checks],
    }
    if lab.shape:
        m["shape"] = {"T": lab.shape[0], "C": lab.shape[1]}
    if lab.labels is not None:
        # str(): a null label is a reported problem, and must not break the manifest that reports it
        m["class_counts"] = dict(sorted((str(k), v) for k, v in Counter(lab.labels.tolist()).items()))
    if rep.folds:
        span = span_ns(lab, cfg)
        m["folds"] = [_fold(rep, f, span) for f in rep.folds]
        last = m["folds"][-1]
        m["split"] = {"train": len(last["train_ids"]), "val": len(last["val_ids"]),
                      "purged": len(last["purged"])}
    un = rep.unlabeled
    if un is not None:
        m["files"]["unlabeled"] = {"path": str(un.path), "sha256": un.sha256, "rows": un.n}
        if rep.pretrain_keep is not None:
            excluded = np.flatnonzero(~rep.pretrain_keep)
            cutoff = _iso(min(f.val_start for f in rep.folds))
            m["unlabeled"] = {
                "kept": int(rep.pretrain_keep.sum()),
                "excluded": [{"window_id": str(un.ids[i]),
                              "reason": f"reaches into the validation period (starts {cutoff})"}
                             for i in excluded],
            }
    return m


def _fold(rep: ValidationReport, f, span: int) -> dict:
    lab = rep.labeled
    val_start = _iso(f.val_start)
    return {
        "train_ids": lab.ids[f.train].tolist(),
        "val_ids": lab.ids[f.val].tolist(),
        "purged": [{"window_id": str(lab.ids[i]),
                    "reason": f"ends {_iso(int(lab.starts[i]) + span)}, after validation starts {val_start}"}
                   for i in f.purged],
        "class_counts": {"train": dict(sorted(Counter(lab.labels[f.train].tolist()).items())),
                         "val": dict(sorted(Counter(lab.labels[f.val].tolist()).items()))},
        "time_ranges": {"train": _range(lab.starts[f.train], span), "val": _range(lab.starts[f.val], span)},
    }


def write_manifest(rep: ValidationReport, out_dir: str | Path) -> Path:
    path = Path(out_dir) / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, build_manifest(rep))
    return path
