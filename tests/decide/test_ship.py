"""The ship protocol (moola.decide.ship) with its effects passed in: a candidate that does not serve is
refused and the next one ships; the registry's production is the one shipped."""

from __future__ import annotations

from moola.decide.decision import Policy
from moola.decide.ship import Effects, decide_and_ship
from moola.registry.store import Registry
from tests.fakes.results import ran

GATES = ("baseline", "minirocket", "pretrain", "transfer", "augment")


def test_a_candidate_that_does_not_serve_is_refused_and_the_next_one_ships(gate_dirs, sample_dir, tmp_path):
    gates = {g: ran(gate_dirs[g]) for g in GATES}
    reg, asked = Registry(tmp_path / "art"), []

    def serves(candidate, folder):
        asked.append(candidate)
        return len(asked) > 1, "served the same predictions" if asked[1:] else "predictions differ"
    d, before, after = decide_and_ship(reg, gates, Policy(), Effects(rescore=None, serves=serves),
                                       data=sample_dir / "train.parquet")
    first, second = asked
    assert first != second and d.action == "ship" and d.candidate == second and before is None
    assert d.reasons[0] == f"{first} does not serve: predictions differ"
    assert f"{second} serves: served the same predictions" in d.reasons
    assert after.key == (second, 1) == reg.production().key
    assert not (tmp_path / "art" / "models" / first).exists()  # the refused candidate was never registered


def test_without_data_nothing_is_served_or_rescored_and_the_first_ship_goes_out(gate_dirs, tmp_path):
    gates = {g: ran(gate_dirs[g]) for g in GATES}

    def never(*a):
        raise AssertionError("called without data")
    d, before, after = decide_and_ship(Registry(tmp_path / "art"), gates, Policy(),
                                       Effects(rescore=never, serves=never))
    assert d.action == "ship" and before is None and after.name == d.candidate
