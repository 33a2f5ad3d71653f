"""The evidence a decision is made on (moola.decide.decision.Evidence), read from gate folders and the
production model: the gates' pooled walk-forward predictions, and production re-scored with its
own normaliser on exactly those windows, less every window that starts before the end of the
last window production trained on (a window it has seen would favour it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from moola.core.errors import MoolaError
from moola.data.load import load_windows
from moola.decide.decision import Evidence
from moola.gates.graph import CANDIDATE_GATES, CONTROL_GATE
from moola.gates.predictions import Scored, gate_scored
from moola.gates.result import GateOutcome
from moola.serve.inference import predict_windows


def gather(gates: dict[str, GateOutcome]) -> Evidence:
    """Scored predictions of the candidates and the control that left predictions in their folder."""
    ev = Evidence()
    for gate, g in gates.items():
        if gate in (*CANDIDATE_GATES, CONTROL_GATE) and g.folder and (g.folder / "predictions.parquet").is_file():
            ev.gates[gate] = gate_scored(g.folder, g.result)
    return ev


def _card_data(card: dict) -> dict:
    """The ``data`` summary of a result.json, or of a card that holds one."""
    return card.get("data") or (card.get("result") or {}).get("data") or {}


def train_end_ns(card: dict) -> tuple[int | None, str]:
    """(end of production's training data in ns, basis) from its card; None when unknown."""
    data = _card_data(card)
    end, basis = data.get("train_end"), data.get("train_end_basis", "timestamps")
    if end is None or basis != "timestamps":
        return None, basis if end is not None else "not recorded"
    return int(pd.Timestamp(end).value), basis


def with_groups(ev: Evidence, data: Path) -> Evidence:
    """``ev`` with each window's ``base_window`` group from ``data`` (resampled and swapped together
    by moola.evaluation.stats); unchanged, with a note, when the data has no groups or cannot be read. Reads
    those two columns only: the features are read once, by rescore_production."""
    import pyarrow.parquet as pq
    try:
        table = pq.read_table(data, columns=["window_id", "base_window"])
        why = None
    except (OSError, ValueError, KeyError) as exc:  # no such column, or not a Parquet file
        table, why = None, ("it has no base_window column" if "base_window" in str(exc) else f"cannot be read: {exc}")
    if table is None:
        return Evidence(ev.gates, ev.production, ev.production_note,
                        [*ev.notes, f"{data}: windows compared one by one ({why})"])
    group_of = {str(i): str(g) for i, g in zip(table["window_id"].to_pylist(), table["base_window"].to_pylist())
                if g is not None}
    return Evidence({g: s.with_groups(group_of) for g, s in ev.gates.items()},
                    ev.production.with_groups(group_of) if ev.production is not None else None,
                    ev.production_note, list(ev.notes))


def rescore_production(folder: Path, card: dict, data: Path, on: Scored, assume_row_order: bool = False,
                       bar_seconds: int | None = None, expected_manifest_sha256: str | None = None,
                       device: str = "cpu", used: frozenset[str] = frozenset()) -> tuple[Scored | None, str, list[str]]:
    """Production's probabilities on the windows of ``on`` (a gate's pooled set) that start at or
    after production's training end, less ``used``: the windows earlier decisions already compared
    this production version on (each reuse would be another chance of a false ship). Returns
    (scored or None, what was scored or why not, notes)."""
    notes: list[str] = []
    w = load_windows(data, labeled=True, assume_row_order=assume_row_order, bar_seconds=bar_seconds)
    if w.problems:
        return None, f"{data}: cannot be read to re-score production ({w.problems[0]})", notes
    row = {str(i): r for r, i in enumerate(w.ids)}
    missing = [i for i in on.ids if i not in row]
    if missing:
        return None, f"{data}: window {missing[0]!r} of the candidates' predictions is not in the data", notes
    rows = np.array([row[i] for i in on.ids], dtype=int)
    end, basis = train_end_ns(card)
    if end is None or assume_row_order:
        notes.append(f"production's training end is not comparable ({'row order' if assume_row_order else basis}): "
                     "it is scored on every pooled window, some of which it may have trained on")
        keep = np.ones(len(rows), dtype=bool)
    else:
        keep = w.starts[rows] >= end
    if not keep.any():
        return None, (f"none of the {len(rows)} validation windows starts after production's training data "
                      f"(which ends {_card_data(card).get('train_end')})"), notes
    reused = keep & np.isin(np.array(on.ids, dtype=str), np.array(sorted(used), dtype=str))
    if reused.any():
        keep &= ~reused
        notes.append(f"{int(reused.sum())} windows were left out: earlier decisions already compared this "
                     "production version on them")
        if not keep.any():
            return None, (f"every one of the windows after production's training data was already used by an "
                          f"earlier decision against it ({int(reused.sum())}); new windows are needed"), notes
    ids = tuple(np.array(on.ids)[keep])
    try:
        proba, classes = predict_windows(Path(folder), w.X[rows[keep]], str(data), device, expected_manifest_sha256)
    except MoolaError as exc:
        return None, f"production cannot score this data ({exc})", notes
    if set(classes) != set(on.classes):
        return None, f"production knows classes {sorted(classes)}, the candidates {sorted(on.classes)}", notes
    proba = proba[:, [classes.index(c) for c in on.classes]]  # in the candidates' class order
    sub = on.subset(ids)
    skipped = len(rows) - len(ids)
    what = (f"production re-scored on {len(ids)} of the {len(rows)} pooled validation windows"
            + (f" ({skipped} start before its training data ends, {_card_data(card).get('train_end')})" if skipped else ""))
    return Scored(ids, sub.y, proba, on.classes, on.positive, sub.groups), what, notes

