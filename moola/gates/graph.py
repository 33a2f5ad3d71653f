"""The one gate table: each gate's name, number, the gate folders it takes as inputs (by role), its
role in the decision, and whether it needs unlabelled windows. Everything else (the CLI's choices,
result.json's gate names, the flow's graph, the decision's candidates and control) reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["data check", "candidate", "control", "encoder"]


@dataclass(frozen=True)
class Gate:
    name: str
    number: int
    role: Role
    inputs: dict[str, str] = field(default_factory=dict)  # --baseline / --encoder: the gate whose folder
    needs_unlabeled: bool = False  # skipped (not failed) when the run has no unlabelled windows
    marks: str = "result.json"  # the file that shows a folder is this gate's output (an input checked by it)


GRAPH: tuple[Gate, ...] = (
    Gate("validate", 0, "data check"),
    Gate("baseline", 1, "candidate"),
    Gate("minirocket", 2, "control", {"baseline": "baseline"}),
    Gate("pretrain", 3, "encoder", needs_unlabeled=True, marks="encoder.json"),
    Gate("transfer", 4, "candidate", {"baseline": "baseline", "encoder": "pretrain"}, needs_unlabeled=True),
    Gate("augment", 5, "candidate", {"baseline": "baseline"}),
)
BY_NAME = {g.name: g for g in GRAPH}
GATES = {g.name: g.number for g in GRAPH}  # name -> number, in gate order
GateName = Literal[tuple(GATES)]  # result.json's gate field, from the table
CANDIDATE_GATES = tuple(g.name for g in GRAPH if g.role == "candidate")
CONTROL_GATE = next(g.name for g in GRAPH if g.role == "control")
INPUT_ROLES = {role: BY_NAME[gate] for g in GRAPH for role, gate in g.inputs.items()}  # --baseline, --encoder
# The order a run starts gates 1-5 in, each after its inputs: pretrain (the longest) beside the baseline.
SCHEDULE = tuple(BY_NAME[g] for g in ("baseline", "pretrain", "minirocket", "augment", "transfer"))
NO_UNLABELED = "skipped: no unlabelled data given (the flow's `unlabeled` parameter), so no pretraining"


def run_plan(has_unlabeled: bool) -> tuple[list[Gate], list[Gate]]:
    """(gates 1-5 a run starts, in SCHEDULE order; those it skips): without unlabelled windows there
    is nothing to pretrain on, so gates 3-4 are skipped (not failed) and the decision still comes."""
    skip = [g for g in SCHEDULE if g.needs_unlabeled and not has_unlabeled]
    return [g for g in SCHEDULE if g not in skip], skip
