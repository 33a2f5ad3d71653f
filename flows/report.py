"""What the Prefect UI shows: a markdown artifact per gate and for the decision, and a
reliability-diagram PNG per model (written into the run folder, linked as an artifact)."""

from __future__ import annotations

from pathlib import Path

from prefect.artifacts import create_link_artifact, create_markdown_artifact

from moola.gates.result import GateResult
from moola.metrics import reliability_bins

METRIC_ROWS = ("accuracy", "f1_weighted", "f1_macro", "pr_auc", "brier", "ece", "log_loss")


def gate_markdown(gate: str, res: GateResult) -> str:
    m, b = res.metrics, res.majority_baseline
    lines = [f"# Gate {res.gate_number}: {gate} - **{res.status}**", ""]
    if m is not None:
        lines += ["| metric | model | majority baseline |", "|---|---|---|"]
        for k in METRIC_ROWS:
            mv, bv = getattr(m, k), getattr(b, k)
            lines.append(f"| {k} | {mv:.3f} | {bv:.3f} |" if mv is not None and bv is not None else f"| {k} | {mv} | {bv} |")
        lines.append(f"\ndegenerate: **{res.degenerate}**")
    lines += [f"- {r}" for r in res.reasons]
    return "\n".join(lines)


def publish_gate(gate: str, res: GateResult, folder: Path) -> Path | None:
    """The gate's markdown artifact, and its reliability diagram when it wrote predictions."""
    create_markdown_artifact(markdown=gate_markdown(gate, res), key=f"gate-{res.gate_number}-{gate}")
    preds = folder / "predictions.parquet"
    if res.metrics is None or not preds.is_file():
        return None
    png = folder.parent / f"reliability-{gate}.png"  # the run folder: gate folders are sealed by their manifest
    reliability_png(preds, png, f"{gate}: F1 {res.metrics.f1_weighted:.3f}, ECE {res.metrics.ece:.3f} "
                                f"({res.metrics.ece_bins} bins, n={res.metrics.n})", res.metrics.ece_bins)
    create_link_artifact(link=png.resolve().as_uri(), link_text=f"reliability diagram: {gate}",
                         key=f"reliability-{gate}", description=f"Top-label reliability of {gate} on validation")
    return png


def reliability_png(predictions: Path, out: Path, title: str, n_bins: int = 15) -> None:
    import matplotlib
    matplotlib.use("Agg")  # no display on a worker
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    df = pd.read_parquet(predictions)
    cols = [c for c in df.columns if c.startswith("proba_")]
    classes = [c[len("proba_"):] for c in cols]
    proba = df[cols].to_numpy(dtype=float)
    y = np.array([classes.index(c) for c in df["label"]])
    bins = reliability_bins(y, proba, n_bins)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    ax.bar([b["low"] for b in bins], [b["accuracy"] for b in bins], width=1 / n_bins, align="edge",
           edgecolor="black", alpha=0.7, label="accuracy in bin")
    for b in bins:
        ax.annotate(str(b["count"]), (b["low"] + 0.5 / n_bins, b["accuracy"]), ha="center", va="bottom", fontsize=7)
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="C3", ms=4,
            label="mean confidence")
    ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="top-label confidence", ylabel="accuracy", title=title)
    ax.title.set_fontsize(8)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def rules_table(rules) -> str:
    """Each rule of a decision or a re-validation, pass or FAIL, as a markdown table ('' if none)."""
    rows = "\n".join(f"| {r.name} | {'pass' if r.passed else 'FAIL'} | {r.detail} |" for r in rules)
    return f"\n\n| rule | result | detail |\n|---|---|---|\n{rows}" if rows else ""


def decision_markdown(d, production: dict | None) -> str:
    prod = f"{production['name']} v{production['version']}" if production else "none"
    return (f"# Decision: **{d.action}**\n\ncandidate: {d.candidate or '-'}; production before: {prod}\n\n"
            + "\n".join(f"- {r}" for r in d.reasons) + rules_table(d.rules))


def revalidation_markdown(production: dict, action: str, reasons: list[str], rules) -> str:
    return (f"# Re-validation of {production['name']} v{production['version']}: **{action}**\n\n"
            + "\n".join(f"- {r}" for r in reasons) + rules_table(rules))
