"""`require_approval`: a ship waits for a person (pause with input); no answer in time -> revert."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.fakes.results import ran
from tests.flows.conftest import jsonl


def baseline_only(gate_dirs):
    return {"baseline": ran(gate_dirs["baseline"])}


def answer_when_paused(run_input: dict, found: list) -> threading.Thread:
    """Plays the person in the UI: waits for the paused decide run, then resumes it with a form."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    def person():
        deadline = time.monotonic() + 60
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
                if runs:
                    found.append(runs[0].id)
                    resume_flow_run(runs[0].id, run_input=run_input)
                    return
                time.sleep(0.5)

    t = threading.Thread(target=person, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("approve", [True, False])
def test_a_person_approves_or_rejects_the_ship(prefect_server, gate_dirs, tmp_path, approve):
    from moola_flows.decide import decide_flow
    gates = baseline_only(gate_dirs)
    art = tmp_path / "art"
    found: list = []
    person = answer_when_paused({"approve": approve, "note": "checked the confusion matrix"}, found)
    out = decide_flow(gates, str(art), require_approval=True, approval_timeout_s=60)
    person.join()
    assert found, "the decide run never paused for approval"
    decision = jsonl(art)[-1]["decision"]
    assert out["action"] == decision["action"] == ("ship" if approve else "revert")
    if approve:
        assert decision["reasons"][-1] == "ship approved: checked the confusion matrix"
        assert json.loads((art / "registry.json").read_text())["production"]["name"] == "baseline"
    else:
        assert decision["reasons"][-1] == "ship rejected by a person: checked the confusion matrix"
        assert not (art / "registry.json").exists() and decision["production_after"] is None


def test_no_answer_in_time_reverts(prefect_server, gate_dirs, tmp_path):
    from moola_flows.decide import decide_flow
    gates = baseline_only(gate_dirs)
    art = tmp_path / "art"
    state = decide_flow(gates, str(art), require_approval=True, approval_timeout_s=2, return_state=True)
    decision = jsonl(art)[-1]["decision"]
    assert state.is_completed() and decision["action"] == "revert"
    assert decision["reasons"][-1] == "ship not approved within 2 s; production stays"
    assert not (art / "registry.json").exists()
