"""What the Prefect UI shows (issue 15), read back through the Prefect API: runs end in states
named after the decision, every artifact has a description, none points at a local file, and
reliability diagrams are embedded PNGs that decode."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.fakes.results import GATE0, ran, without_folders

PNG = b"\x89PNG\r\n\x1a\n"


def artifacts_of(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))


def embedded_pngs(markdown: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", markdown)]


@pytest.mark.parametrize("results,name,failed", [
    ({"validate": {"status": "failed", "reasons": ["train.parquet: column 'label': null"]}}, "Blocked", True),
    ({"validate": {"status": "passed"}, "baseline": {"status": "passed", "degenerate": False,
                                                     "metrics": {"f1_weighted": 0.7}},
      "minirocket": {"status": "failed", "comparison": {"verdict": "control_wins", "f1": 0.9, "baseline_f1": 0.7,
                                                                   "delta": 0.2}}},
     "Investigate", True),
])
def test_halting_decisions_end_in_named_failed_states(prefect_server, tmp_path, results, name, failed):
    from moola_flows.decide import decide_flow
    state = decide_flow(without_folders(results), artifacts=str(tmp_path / "art"), return_state=True)
    assert state.is_failed() == failed and state.name == name
    assert state.message.startswith(name.lower() + ": ")
    arts = artifacts_of(state.state_details.flow_run_id)
    decision = next(a for a in arts if a.key == "decision")
    assert decision.description.startswith(name.lower()) and "| gate | status |" in decision.data


def test_ship_then_revert_are_named_completed_states(prefect_server, gate_dirs, sample_dir, tmp_path):
    from moola_flows.decide import decide_flow
    result = json.loads((gate_dirs["baseline"] / "result.json").read_text())
    gates = {"validate": GATE0, "baseline": ran(gate_dirs["baseline"], result)}
    first = decide_flow(gates, artifacts=str(tmp_path / "art"), data=str(sample_dir / "train.parquet"),
                        return_state=True)
    assert first.is_completed() and first.name == "Shipped" and first.result()["action"] == "ship"
    again = decide_flow(gates, artifacts=str(tmp_path / "art"), return_state=True)  # same F1: does not beat it
    assert again.is_completed() and again.name == "Reverted" and again.message.startswith("revert: ")
    table = next(a for a in artifacts_of(again.state_details.flow_run_id) if a.key == "decision-history")
    rows = json.loads(table.data)
    assert [r["action"] for r in rows] == ["ship", "revert"] and rows[0]["production after"] == "baseline v1"
