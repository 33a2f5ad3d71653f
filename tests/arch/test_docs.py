"""What the README and docs/ tell users to type is what the parsers accept: every `moola ...`,
`python -m flows.gates ...` and `python -m flows.revalidate ...` command they show names a
subcommand that exists and only flags its parser knows. The README stays a guide (<= 12 KB)."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAMS = {"moola": "moola.cli.main", "python -m flows.gates": "moola_flows.gates", "python -m flows.revalidate": "moola_flows.revalidate"}


def parser_of(module: str) -> argparse.ArgumentParser:
    import importlib
    return importlib.import_module(module).build_parser()


def commands(text: str) -> list[str]:
    """Each command line in code spans and fenced blocks that starts with a program above."""
    spans = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S) + re.findall(r"`([^`\n]+)`", text)
    out = []
    for span in spans:
        for line in span.splitlines():
            line = line.split("  #")[0].strip()
            for prog in PROGRAMS:
                if line.startswith(prog + " ") or line == prog:
                    out.append(line)
    return out


def check(prog: str, argv: list[str]) -> list[str]:
    """Problems with ``argv`` (after the program name) against the program's parser."""
    p = parser_of(PROGRAMS[prog])
    argv = [w.strip("[]") for w in argv]  # usage lines: [--flag VALUE]
    words = [w for w in argv if w and not w.startswith("-") and w not in ("...", "|")]
    for w in words:  # walk down the subcommands the words name
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            break
        if w not in subs[0].choices:
            return [f"{prog}: no subcommand {w!r} (has {sorted(subs[0].choices)})"]
        p = subs[0].choices[w]
    known = {o for a in p._actions for o in a.option_strings}
    return [f"{prog} {' '.join(words)}: unknown option {f}" for f in argv
            if f.startswith("--") and f.split("=")[0] not in known]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_commands_match_the_parsers(doc):
    problems = []
    for line in commands(doc.read_text()):
        prog = next(p for p in sorted(PROGRAMS, key=len, reverse=True) if line.startswith(p))
        try:
            argv = shlex.split(line[len(prog):])
        except ValueError:
            argv = line[len(prog):].split()
        problems += [f"{doc.name}: `{line}`: {x}" for x in check(prog, argv)]
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_wrong_flag_and_a_wrong_subcommand():
    assert check("moola", ["validate", "data.parquet", "--val-size", "20"]) == []
    assert check("moola", ["validate", "--no-such-flag"]) == ["moola validate: unknown option --no-such-flag"]
    assert check("moola", ["registrie", "show"])[0].startswith("moola: no subcommand 'registrie'")
    assert check("python -m flows.gates", ["--data", "x", "--folds", "3"]) == []


def test_the_readme_is_a_guide_not_a_reference():
    assert (ROOT / "README.md").stat().st_size <= 12_500
    for doc in DOCS[1:]:
        assert doc.name in (ROOT / "README.md").read_text(), f"README links every doc page: {doc.name}"
