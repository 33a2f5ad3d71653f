"""Thin Prefect tasks over moola's Runner and registry."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact

from moola.errors import RemoteUnavailable
from moola.gates.result import read_result
from moola.remote.runner import GateCall, make_runner

RETRY_DELAYS = [2, 4, 8, 16, 30, 30, 30, 30]  # capped exponential backoff (seconds)


def transient_only(task, task_run, state) -> bool:
    """Retry a gate only when the runner said the remote was unavailable."""
    try:
        state.result()
    except RemoteUnavailable:
        return True
    except Exception:
        return False
    return False


def _markdown(gate: str, res) -> str:
    m, b = res.metrics, res.majority_baseline
    lines = [f"# Gate {res.gate_number}: {gate} - **{res.status}**", ""]
    if m is not None:
        lines += ["| metric | model | majority baseline |", "|---|---|---|"]
        for k in ("accuracy", "f1_weighted", "f1_macro", "pr_auc", "brier", "ece", "log_loss"):
            mv, bv = getattr(m, k), getattr(b, k)
            lines.append(f"| {k} | {mv:.3f} | {bv:.3f} |" if mv is not None and bv is not None else f"| {k} | {mv} | {bv} |")
        lines.append(f"\ndegenerate: **{res.degenerate}**")
    lines += [f"- {r}" for r in res.reasons]
    return "\n".join(lines)


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS, retry_jitter_factor=0.2,
      retry_condition_fn=transient_only, task_run_name="gate {gate}")
def run_gate(gate: str, runner: str, data: str, out: str, options: list[str], unlabeled: str | None = None,
             baseline: str | None = None, encoder: str | None = None, config: str | None = None) -> dict:
    call = GateCall(gate=gate, data=Path(data), out=Path(out), unlabeled=Path(unlabeled) if unlabeled else None,
                    baseline=Path(baseline) if baseline else None, encoder=Path(encoder) if encoder else None,
                    options=tuple(options), config=Path(config) if config else None)
    folder = make_runner(runner).run_gate(call)
    res = read_result(folder)
    create_markdown_artifact(markdown=_markdown(gate, res), key=f"gate-{res.gate_number}-{gate}")
    return {"dir": str(folder), "result": res.model_dump(mode="json")}
