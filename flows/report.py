"""What the Prefect UI shows: a markdown artifact per gate (with its reliability diagram embedded
as a data: URI, never a local path) and one for the decision, on the `gates` run itself, plus a
table of past decisions."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from pathlib import Path

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from moola.evaluation.paired import PairedEvidence
from moola.gates.graph import GATES
from moola.gates.result import GateResult, Metrics
from moola.registry.store import Pointer

# the name of the state a run ends in, per decision / re-validation outcome (the UI's run list shows it)
STATE_NAMES = {"ship": "Shipped", "revert": "Reverted", "investigate": "Investigate", "blocked": "Blocked"}
REVALIDATION_STATES = {"healthy": "Healthy", "degraded": "Degraded", "none": "No production"}

METRIC_ROWS = ("accuracy", "f1_weighted", "f1_macro", "pr_auc", "brier", "ece", "log_loss")


def gate_headline(gate: str, res: GateResult) -> str:
    """One line that does not contradict the task's state: what the gate found."""
    if gate == "minirocket" and res.comparison is not None and res.comparison.verdict == "control_wins":
        return "control beats baseline: investigate"
    if gate == "validate":
        return "data valid" if res.status == "passed" else "data invalid"
    return res.status


def gate_description(gate: str, res: GateResult) -> str:
    """The artifact's description, e.g. 'passed - F1 0.752 vs majority 0.229'."""
    head = gate_headline(gate, res)
    if res.metrics is not None:
        return f"{head} - F1 {res.metrics.f1_weighted:.3f} vs majority {res.majority_baseline.f1_weighted:.3f}"
    d = res.data or {}
    if d:
        return f"{head} - {d.get('labeled_rows')} windows, {d.get('train')} train / {d.get('val')} val"
    return f"{head} - " + ("; ".join(res.reasons)[:120] or "no metrics")


def gate_markdown(gate: str, res: GateResult, png: bytes | None = None, manifest: dict | None = None) -> str:
    """Pooled figures first (every fold's validation windows: what the decision uses), the last
    fold's (the gate model's own) beside them."""
    m, b, p = res.metrics, res.majority_baseline, res.pooled
    lines = [f"# Gate {res.gate_number}: {gate} - **{gate_headline(gate, res)}**", ""]
    if m is not None:
        cols = [(f"pooled ({p.n} windows, every fold)", p)] if p is not None else []
        cols += [(f"last fold ({m.n} windows)", m), ("majority baseline (last fold)", b)]
        if p is not None:
            lines += [f"The decision uses the pooled figures: each of the {p.n} windows predicted by a model "
                      "trained only on data before it.", ""]
        lines += ["| metric | " + " | ".join(name for name, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for k in METRIC_ROWS:
            label = f"{k} (reported)" if k == "ece" else k
            vals = [getattr(x, k) for _, x in cols]
            lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" if v is not None else "-" for v in vals) + " |")
        lines.append(f"\ndegenerate (last fold): **{res.degenerate}**")
    if gate == "validate":
        lines += gate0_lines(res, manifest or {})
    lines += [f"- {r}" for r in res.reasons]
    if png is not None:
        lines += ["", f"![reliability diagram of {gate}](data:image/png;base64,{base64.b64encode(png).decode()})"]
    return "\n".join(lines)


def gate0_lines(res: GateResult, manifest: dict) -> list[str]:
    """Rows, classes, split sizes, purged and excluded windows, and every check with its outcome."""
    d = res.data or {}
    split = manifest.get("split") or {}
    excluded = len((manifest.get("unlabeled") or {}).get("excluded") or [])
    lines = ["| what | value |", "|---|---|",
             f"| labelled windows | {d.get('labeled_rows', (manifest.get('files') or {}).get('labeled', {}).get('rows'))} |",
             f"| window shape T x C | {d.get('T')} x {d.get('C')} |",
             f"| classes | {', '.join(f'{k}: {v}' for k, v in (manifest.get('class_counts') or {}).items())} |",
             f"| train / validation | {split.get('train', d.get('train'))} / {split.get('val', d.get('val'))} |",
             f"| purged train windows | {split.get('purged', d.get('purged'))} |",
             f"| folds | {d.get('folds', len(manifest.get('folds') or []))} |",
             f"| unlabelled windows excluded (reach into validation) | {excluded} |", "",
             "| check | outcome |", "|---|---|"]
    for c in manifest.get("checks") or []:
        lines.append(f"| {c['name']} | {'pass' if c['passed'] else 'FAIL: ' + '; '.join(c['problems'])[:200]} |")
    return lines


def publish_gate(gate: str, res: GateResult, folder: Path) -> Path | None:
    """The gate's markdown artifact (keys sort in gate order), with its reliability diagram
    embedded as a data: URI when it wrote predictions, so it renders wherever the UI is opened.
    The PNG is also written to the run folder (gate folders are sealed by their manifest)."""
    png_path, png = None, None
    preds = folder / "predictions.parquet"
    if res.metrics is not None and preds.is_file():
        png_path = folder.parent / f"reliability-{gate}.png"
        # the bars are every row of predictions.parquet (every fold): the title gives those figures
        shown, what = (res.pooled, "pooled") if res.pooled is not None else (res.metrics, "last fold")
        reliability_png(preds, png_path, f"{gate}: {what} F1 {shown.f1_weighted:.3f}, ECE {shown.ece:.3f} "
                                         f"({shown.ece_bins} bins, n={shown.n})", shown.ece_bins)
        png = png_path.read_bytes()
    manifest = None
    if gate == "validate" and (folder / "data_manifest.json").is_file():
        manifest = json.loads((folder / "data_manifest.json").read_text())
    create_markdown_artifact(markdown=gate_markdown(gate, res, png, manifest), key=f"gate-{res.gate_number}-{gate}",
                             description=gate_description(gate, res))
    return png_path


def reliability_png(predictions: Path, out: Path, title: str, n_bins: int = 15) -> None:
    import matplotlib
    matplotlib.use("Agg")  # no display on a worker
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from moola.evaluation.metrics import reliability_bins  # scikit-learn: off the worker's import path
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


def forest_png(evidence: dict[str, PairedEvidence], out: Path) -> bool:
    """The decision's paired F1 differences (B - A) with their 95% intervals, one row each (each
    candidate vs production, the control vs the best candidate); False when there is none."""
    rows = list((evidence or {}).items())
    if not rows:
        return False
    import matplotlib
    matplotlib.use("Agg")  # no display on a worker
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 0.55 * len(rows) + 1.3), dpi=100)
    for i, (_, e) in enumerate(rows):
        f = e.f1_weighted
        ax.errorbar(f.diff, i, xerr=[[f.diff - f.ci_low], [f.ci_high - f.diff]], fmt="o",
                    color="C0" if f.ci_low > 0 else "C7", capsize=4)
        # the smallest difference these windows detect with 80% power
        ax.plot([e.detectable.f1_weighted.difference], [i], "|", color="C3", ms=12)
    ax.axvline(0, color="grey", ls="--", lw=1)
    ax.set_yticks(range(len(rows)), [f"{name} ({e.n} windows)" for name, e in rows], fontsize=8)
    ax.set_xlabel("F1 difference (B - A), 95% CI; red tick: smallest difference detectable (80% power)",
                  fontsize=8)
    ax.invert_yaxis()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return True


def forest_markdown(png: Path | None) -> str:
    if png is None or not png.is_file():
        return ""
    return ("\n\n## Paired F1 differences\n\n"
            f"![forest plot of the paired F1 differences](data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()})")


def rules_table(rules) -> str:
    """Each rule of a decision or a re-validation as a markdown table ('' if none); rules that are
    reported only (ECE) say so instead of 'pass'."""
    def outcome(r):
        return "reported" if "reported only" in r.name else ("pass" if r.passed else "FAIL")
    rows = "\n".join(f"| {r.name} | {outcome(r)} | {r.detail} |" for r in rules)
    return f"\n\n| rule | result | detail |\n|---|---|---|\n{rows}" if rows else ""


def _f1(m: Metrics | None) -> str:
    return f"{m.f1_weighted:.3f}" if m is not None else "-"


def _fold_f1s(res: GateResult) -> str:
    return " / ".join(f"{f.metrics.f1_weighted if f.metrics else float('nan'):.3f}" for f in res.folds or []) or "-"


def evidence_table(d, results: dict[str, GateResult]) -> str:
    """Every gate's outcome, pooled and per-fold F1: what the decision was made from (always a
    table), then the paired comparisons behind the rules."""
    rows = []
    for gate in GATES:
        res = results.get(gate)
        if res is None:
            continue
        why = "; ".join(res.reasons)[:160]
        mark = " (candidate)" if gate == d.candidate else ""
        pooled = f"{_f1(res.pooled)} ({res.pooled.n})" if res.pooled is not None else "-"
        rows.append(f"| {gate}{mark} | {res.status} | {pooled} | {_fold_f1s(res)} "
                    f"| {why} |")
    table = ("\n\n| gate | status | pooled F1 (windows) | F1 per fold, oldest first | reasons |\n"
             "|---|---|---|---|---|\n" + "\n".join(rows))
    paired = []
    for name, e in (getattr(d, "evidence", None) or {}).items():
        f, b, m = e.f1_weighted, e.brier, e.mcnemar
        paired.append(f"| {name} | {e.n} | {f.b:.3f} vs {f.a:.3f} | {f.diff:+.3f} [{f.ci_low:+.3f}, {f.ci_high:+.3f}] "
                      f"| {e.p_sign_flip:.4f} | {b.diff:+.3f} [{b.ci_low:+.3f}, {b.ci_high:+.3f}] "
                      f"| {m.b_only} / {m.a_only} | {e.detectable.f1_weighted.difference:.3f} |")
    if paired:
        table += ("\n\n| paired comparison (B vs A) | windows | F1 B vs A | F1 difference, 95% CI | "
                  "one-sided p (sign-flip) | Brier difference, 95% CI | only B / only A right | "
                  "smallest F1 difference detectable (80% power) |\n|---|---|---|---|---|---|---|---|\n"
                  + "\n".join(paired))
    return table


def decision_description(d, production: Pointer | None) -> str:
    prod = production.label if production else "none"
    cand = f" {d.candidate}" if d.candidate else ""
    return f"{d.action}{cand} (production before: {prod}) - {d.reasons[0][:100] if d.reasons else ''}"


def decision_markdown(d, production: Pointer | None, results: dict | None = None) -> str:
    prod = production.label if production else "none"
    return (f"# Decision: **{d.action}**\n\ncandidate: {d.candidate or '-'}; production before: {prod}\n\n"
            + "\n".join(f"- {r}" for r in d.reasons)
            + "".join(f"\n- note: {w}" for w in getattr(d, "notes", None) or []) + rules_table(d.rules)
            + (evidence_table(d, results) if results else ""))


def pods_markdown(pods: list[dict] | None, moves: list[dict] | None = None) -> str:
    """The pods a run used (uptime and estimated cost at the decision, the gates each ran, why a pod
    was lost), and the gates that moved from a lost pod to another."""
    if not pods:
        return ""
    rows = "".join(f"| {p['pod_id']} | {p.get('gpu_type') or '?'} | {p['uptime_s']:.0f} s | ${p['cost_per_hr']:.2f}/h "
                   f"| ${p['cost_usd']:.4f} | {', '.join(p.get('units') or []) or '-'} | {p.get('lost') or '-'} |\n"
                   for p in pods)
    moved = "".join(f"- gate {m['unit']}: {m['from']} -> {m['to'] or 'nowhere'} ({m['why']})\n" for m in moves or [])
    return ("\n\n## Pods (uptime and cost at the decision)\n\n| pod | GPU type | uptime | price | cost | gates | lost |\n"
            "|---|---|---|---|---|---|---|\n" + rows + (f"\n### Moved gates\n\n{moved}" if moved else ""))


def publish_decision(d, production_before: Pointer | None, production_after: Pointer | None, results: dict,
                     history: list[dict], pods: list[dict] | None = None, moves: list[dict] | None = None,
                     run_dir: Path | None = None) -> None:
    """On the run that calls it (the `gates` run): the decision, and the table of past decisions.
    With ``run_dir`` (the folder of the run's gate folders), also ``decision.md`` and
    ``forest.png`` there: the same report, readable without the Prefect UI."""
    text = decision_markdown(d, production_before, results) + pods_markdown(pods, moves)
    png = None
    if getattr(d, "evidence", None):
        png = (Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="moola-forest-"))) / "forest.png"
        if not forest_png(d.evidence, png):
            png = None
    create_markdown_artifact(key="decision", markdown=text + forest_markdown(png),
                             description=decision_description(d, production_before))
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / "decision.md").write_text(
            text + ("\n\n## Paired F1 differences\n\n![forest plot](forest.png)\n" if png else "\n"))
    elif png is not None:
        shutil.rmtree(png.parent, ignore_errors=True)
    rows = []
    for rec in history[-20:]:
        x = rec["decision"]
        before, after = x.get("production_before"), x.get("production_after")
        rows.append({"at": rec.get("at", ""), "action": x["action"], "candidate": x.get("candidate") or "-",
                     "production before": f"{before['name']} v{before['version']}" if before else "none",
                     "production after": f"{after['name']} v{after['version']}" if after else "none",
                     "reason": (x.get("reasons") or [""])[0][:120]})
    create_table_artifact(key="decision-history", table=rows,
                          description=f"the last {len(rows)} decisions, oldest first")


def revalidation_description(production: Pointer, action: str, reasons: list[str]) -> str:
    return f"{action} - {production.label}: {reasons[0][:100] if reasons else ''}"


def revalidation_markdown(production: Pointer, action: str, reasons: list[str], rules) -> str:
    return (f"# Re-validation of {production.label}: **{action}**\n\n"
            + "\n".join(f"- {r}" for r in reasons) + rules_table(rules))
