"""Property: for any times, spans and groups, no validation window starts before a train window
ends, and no group straddles the split."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from moola.data.split import forward_chaining_split, pretrain_mask


@st.composite
def datasets(draw):
    n = draw(st.integers(4, 60))
    starts = np.array(draw(st.lists(st.integers(0, 10_000), min_size=n, max_size=n)), dtype=np.int64)
    spans = np.array(draw(st.lists(st.integers(1, 500), min_size=n, max_size=n)), dtype=np.int64)
    groups = draw(st.one_of(st.none(), st.lists(st.sampled_from(["g1", "g2", "g3", None]),
                                                min_size=n, max_size=n)))
    val = draw(st.one_of(st.integers(1, n - 1), st.floats(0.05, 0.6)))
    folds = draw(st.integers(1, 3))
    return starts, spans, None if groups is None else np.array(groups, dtype=object), val, folds


@settings(max_examples=300, deadline=None)
@given(datasets())
def test_forward_chaining_never_leaks(data):
    starts, spans, groups, val, folds = data
    try:
        result = forward_chaining_split(starts, spans, groups, val, folds)
    except Exception as exc:  # only a clear DataError is allowed (too few rows for the folds)
        assert type(exc).__name__ == "DataError"
        return
    for f in result:
        assert len(np.intersect1d(f.train, f.val)) == 0
        assert len(np.intersect1d(f.train, f.purged)) == 0
        if len(f.train) and len(f.val):
            assert (starts[f.train] + spans[f.train]).max() <= starts[f.val].min()
            assert f.train_end <= f.val_start
        if groups is not None:
            train_groups = {g for g in groups[f.train] if g is not None}
            val_groups = {g for g in groups[f.val] if g is not None}
            assert not (train_groups & val_groups)
    last = result[-1]
    assert len(last.train) + len(last.val) + len(last.purged) == len(starts)


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=50), st.integers(1, 100), st.integers(0, 1200))
def test_pretrain_mask_keeps_only_windows_ending_before_cutoff(starts, span, cutoff):
    starts = np.array(starts, dtype=np.int64)
    keep = pretrain_mask(starts, span, cutoff)
    assert np.all(starts[keep] + span <= cutoff)
    assert np.all(starts[~keep] + span > cutoff)
