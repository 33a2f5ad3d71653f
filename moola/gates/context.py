"""The context every gate runs in: Gate 0 on the inputs, the per-fold arrays, evaluation, the
result it returns, and how its folder is finished."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from moola import __version__
from moola.core.errors import ConfigError, DataError
from moola.core.files import sha256_file
from moola.core.seal import verify_folder, write_manifest
from moola.core.version import git_commit
from moola.data.config import DataConfig
from moola.data.record import build_manifest
from moola.data.validate import ValidationReport, validate
from moola.evaluation.metrics import evaluate_predictions, positive_index
from moola.evaluation.paired import PairedEvidence
from moola.evaluation.stats import paired_evidence
from moola.gates.config import GateConfig
from moola.gates.graph import GATES
from moola.gates.predictions import gate_scored
from moola.gates.result import FoldMetrics, GateResult, Metrics, read_result
from moola.train.memory import memory_problem
from moola.train.normalize import Normalizer, fit_normalizer, resolve_method

DATA_MANIFEST = "data_manifest.json"


@dataclass
class FoldData:
    """One fold's arrays; train rows are in time order (the inner early-stopping split needs it)."""

    index: int
    X_train: np.ndarray     # (N, T, C) normalised float32
    y_train: list[str]
    X_val: np.ndarray
    y_val: list[str]
    ids_val: list[str]
    normalizer: Normalizer


@dataclass
class Context:
    cfg: GateConfig
    device: torch.device
    report: ValidationReport
    classes: list[str]
    folds: list[FoldData]
    positive: int | None
    manifest_sha256: str
    out: Path

    @property
    def last(self) -> FoldData:
        return self.folds[-1]

    @property
    def n_channels(self) -> int:
        return self.last.X_train.shape[2]

    @property
    def T(self) -> int:
        return self.last.X_train.shape[1]


def prepare(data: Path, unlabeled: Path | None, dcfg: DataConfig, cfg: GateConfig,
            device: torch.device, out: Path) -> Context:
    """Gate 0 on the inputs (raises DataError when invalid), then normalised arrays per fold."""
    rep = validate(data, unlabeled, dcfg)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / DATA_MANIFEST
    manifest_path.write_text(json.dumps(build_manifest(rep), indent=2) + "\n")
    rep.raise_if_invalid()
    lab = rep.labeled
    too_big = memory_problem(lab.n, lab.shape[0], lab.shape[1], cfg, pretrain=unlabeled is not None)
    if too_big:
        raise DataError(f"{lab.path.name}: column 'features': {too_big}")
    classes = sorted(set(lab.labels.tolist()))
    method = resolve_method(cfg.normalize, lab.shape[1], dcfg.channels)
    folds = []
    for i, f in enumerate(rep.folds):
        tr = f.train[np.argsort(lab.starts[f.train], kind="stable")]
        va = f.val[np.argsort(lab.starts[f.val], kind="stable")]
        norm = fit_normalizer(lab.X[tr], method)
        folds.append(FoldData(i, norm.transform(lab.X[tr]), lab.labels[tr].tolist(),
                              norm.transform(lab.X[va]), lab.labels[va].tolist(), lab.ids[va].tolist(),
                              norm))
    if len(classes) == 2 or cfg.positive_class:
        if cfg.positive_class and cfg.positive_class not in classes:
            raise ConfigError(f"positive_class {cfg.positive_class!r} is not a class of the data ({classes})")
        positive = positive_index(classes, folds[-1].y_train, cfg.positive_class)
    else:
        positive = None
    return Context(cfg, device, rep, classes, folds, positive, sha256_file(manifest_path), out)


@dataclass
class Evaluation:
    metrics: dict
    majority: dict
    degenerate: bool
    reasons: list[str]
    predicted: list[str]
    proba: np.ndarray


def evaluate(ctx: Context, fold: FoldData, proba: np.ndarray) -> Evaluation:
    pred, m, maj, degenerate, reasons = evaluate_predictions(fold.y_val, fold.y_train, proba, ctx.classes,
                                                             ctx.positive)
    return Evaluation(m, maj, degenerate, reasons, pred, proba)


def fold_summaries(ctx: Context, evals: list[Evaluation]) -> list[FoldMetrics] | None:
    if len(ctx.folds) < 2:
        return None
    return [FoldMetrics(fold=f.index + 1, train=len(f.y_train), val=len(f.y_val),
                        metrics=Metrics(**e.metrics), majority_baseline=Metrics(**e.majority),
                        degenerate=e.degenerate) for f, e in zip(ctx.folds, evals)]


def write_predictions(ctx: Context, evals: list[Evaluation]) -> Path:
    """Every fold's validation predictions (column ``fold``, 1 = oldest): the walk-forward set the
    decision is made on. The last fold's rows are the gate model's own (the serving check)."""
    frames = []
    for fold, ev in zip(ctx.folds, evals):
        df = pd.DataFrame({"window_id": fold.ids_val, "fold": fold.index + 1, "label": fold.y_val,
                           "predicted": ev.predicted})
        for j, c in enumerate(ctx.classes):
            df[f"proba_{c}"] = ev.proba[:, j]
        frames.append(df)
    path = ctx.out / "predictions.parquet"
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)
    return path


def pooled_metrics(ctx: Context, evals: list[Evaluation]) -> Metrics:
    """Metrics over the validation windows of every fold, each predicted by its own fold's model
    (trained only on data before that block)."""
    y = [c for f in ctx.folds[:len(evals)] for c in f.y_val]
    proba = np.concatenate([e.proba for e in evals])
    return Metrics(**evaluate_predictions(y, ctx.last.y_train, proba, ctx.classes, ctx.positive).metrics)


def data_summary(ctx: Context) -> dict:
    f = ctx.report.split
    lab = ctx.report.labeled
    basis = "row order" if lab.assumed_row_order else "timestamps"
    return {"labeled_rows": lab.n, "T": lab.shape[0], "C": lab.shape[1], "train": len(f.train),
            "val": len(f.val), "purged": len(f.purged), "folds": len(ctx.folds), "classes": ctx.classes,
            "positive_class": ctx.classes[ctx.positive] if ctx.positive is not None else None,
            "normalizer": ctx.last.normalizer.to_dict(),
            # the end of the last window the gate's model trained on: a later comparison may only use
            # windows from here on (moola.decide.evidence)
            "train_end": pd.Timestamp(f.train_end, unit="ns", tz="UTC").isoformat() if f.train_end >= 0 else None,
            "train_end_basis": basis,
            "val_windows_per_fold": [len(x.y_val) for x in ctx.folds]}


def environment(device: torch.device) -> dict:
    env = {"moola": __version__, "python": platform.python_version(), "torch": torch.__version__,
           "cuda_available": torch.cuda.is_available(), "device": str(device),
           "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
           "host": platform.node(), "git_commit": git_commit()}
    return env


def finish(ctx: Context, result) -> None:
    """result.json, then MANIFEST.sha256 over everything in the folder (written last)."""
    result.write(ctx.out)
    write_manifest(ctx.out)


def gate_result(ctx: Context, gate: str, ev: Evaluation | None, evals: list[Evaluation], reasons: list[str],
                **kw) -> GateResult:
    """The GateResult of a gate: failed when it has reasons, else passed (not yet written)."""
    return GateResult(gate=gate, gate_number=GATES[gate], status="failed" if reasons else "passed", reasons=reasons,
                      metrics=Metrics(**ev.metrics) if ev else None,
                      majority_baseline=Metrics(**ev.majority) if ev else None,
                      degenerate=ev.degenerate if ev else None, folds=fold_summaries(ctx, evals) if ev else None,
                      pooled=pooled_metrics(ctx, evals) if ev else None,
                      config=ctx.cfg.model_dump(), data_manifest_sha256=ctx.manifest_sha256,
                      data=data_summary(ctx), **kw)


def baseline_info(baseline_dir: Path | None) -> tuple[float | None, dict | None]:
    """(pooled F1, summary) of the --baseline gate folder the comparison is made against, verified first."""
    if baseline_dir is None:
        return None, None
    verify_folder(baseline_dir)
    res = read_result(baseline_dir)
    if res.metrics is None:
        raise ConfigError(f"--baseline {baseline_dir}: that result has no metrics")
    return (res.pooled or res.metrics).f1_weighted, {"gate": res.gate, "degenerate": res.degenerate,
                                                     "status": res.status}


def against_baseline(ctx: Context, baseline_dir: Path, evals: list[Evaluation]) -> PairedEvidence:
    """moola.evaluation.stats.paired_evidence of this gate's pooled predictions (B) against the --baseline
    folder's (A), on the same windows; ConfigError when that folder predicted other windows."""
    base = gate_scored(baseline_dir, read_result(baseline_dir))
    ids = tuple(str(i) for f in ctx.folds[:len(evals)] for i in f.ids_val)
    if set(ids) != set(base.ids) or tuple(base.classes) != tuple(ctx.classes):
        raise ConfigError(f"--baseline {baseline_dir}: its predictions cover other windows or classes than this "
                          "gate's (was it run on other data, or with other --folds/--val-size?)")
    base = base.subset(ids)
    return paired_evidence(base.y, base.proba, np.concatenate([e.proba for e in evals]), ctx.positive)
