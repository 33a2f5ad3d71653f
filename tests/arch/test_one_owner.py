"""One owner per default and per name (issue 9): grep the source for each declaration.

The runner names are declared as a set only in moola/remote/kinds.py; the data defaults
(val_size 0.2, folds 1, bar_seconds 60) only in DataConfig. Everything else imports them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("moola", "flows") for p in (ROOT / d).rglob("*.py")]


def hits(pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return sorted(f"{p.relative_to(ROOT)}:{n}" for p in SOURCES
                  for n, line in enumerate(p.read_text().splitlines(), 1) if rx.search(line))


def test_runner_names_are_declared_once():
    # a literal set of two or more runner names: Literal[...], a tuple, a list, a help text listing them
    names = r"[\"'](here|local|ssh|runpod)[\"']"
    found = hits(rf"{names}\s*,\s*{names}")
    assert [h.split(":")[0] for h in found] == ["moola/remote/kinds.py"] * len(found) and found


def test_data_defaults_are_declared_once():
    found = {  # noqa: C416
        # a default: `name: type = value`, `name=value`, `default=value` on a name's line, or Field(value
        k: hits(rf"\b{k}\b\s*(:[^=\n]*)?(?<![<>!=])=\s*{v}\b|\b{k}\b.*(default=|Field\()\s*{v}\b")
        for k, v in (("val_size", r"0\.2"), ("folds", "1"), ("bar_seconds", "60"))
    }
    assert {k: [h.split(":")[0] for h in v] for k, v in found.items()} == {
        k: ["moola/data/config.py"] for k in found}


def test_no_literal_default_runner_outside_kinds():
    assert hits(r"runner[^=\n]*=\s*[\"'](here|local)[\"']") == []


def test_the_gate_table_is_declared_once():
    """Gate names, numbers, inputs and roles: moola/gates/graph.py. A literal naming two or more gates
    anywhere else (a list, a Literal, a dict of inputs) is a second table to keep in step."""
    gate = r"[\"'](validate|baseline|minirocket|pretrain|transfer|augment)[\"']"
    found = hits(rf"{gate}\s*[,:]\s*[\[{{(]?\s*{gate}")
    assert {h.split(":")[0] for h in found} == {"moola/gates/graph.py"}, found


def test_exit_codes_are_declared_once():
    """0/1/2/3 as exit codes: the table and the names in moola/core/errors.py; elsewhere by name. The
    pod's watchdog is the exception: a standard-library script shipped alone (moola/pods/boot.py)."""
    found = hits(r"exit_code\s*=\s*\d|EXIT_\w+\s*=|\bcode in \(\d[,)]|\bcode == \d\b|return [123]\s*$")
    assert {h.split(":")[0] for h in found} == {"moola/core/errors.py", "moola/pods/watchdog.py"}, found


def test_the_seed_default_is_declared_once():
    """17: the training seed (moola/gates/config.py: DEFAULT_SEED) and the sample data's (SAMPLE_SEED)."""
    found = hits(r"(?<![\w.])17(?![\w.])")
    assert sorted({h.split(":")[0] for h in found}) == ["moola/data/sample.py", "moola/gates/config.py"], found
