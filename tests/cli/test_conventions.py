"""The command line's conventions (issue 26): a help a user can read, help on every option, -v
anywhere, --json on the commands that report, and one exit-code table applied everywhere."""

from __future__ import annotations

import argparse
import json

import pytest

from moola.cli.main import build_parser, main
from moola.core.errors import EXIT_CODES


def parsers(p: argparse.ArgumentParser, path=("moola",)):
    yield " ".join(path), p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, child in a.choices.items():
                yield from parsers(child, (*path, name))


def test_the_top_level_help_is_for_users_and_carries_the_exit_codes():
    text = build_parser().format_help()
    assert "decide whether one replaces production" in text and "Handlers turn" not in text
    for code, what in EXIT_CODES.items():
        assert f"  {code}  {what}" in text


def test_every_option_and_argument_has_help():
    missing = [f"{path}: {a.option_strings or a.dest}" for path, p in parsers(build_parser())
               for a in p._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
               and not a.help]
    assert not missing, missing


@pytest.mark.parametrize("argv,verbose", [(["-v", "validate", "x"], True), (["validate", "x", "-v"], True),
                                          (["registry", "show", "--verbose"], True), (["validate", "x"], False),
                                          (["pods", "clean", "-v"], True)])
def test_verbose_is_accepted_before_or_after_the_subcommand(argv, verbose):
    assert build_parser().parse_args(argv).verbose is verbose


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_reports_as_json_and_exits_by_the_table(sample_dir, sample_frame, write_frame, capsys):
    code, out, _ = run(["validate", str(sample_dir / "train.parquet"), "--json"], capsys)
    got = json.loads(out)
    assert code == 0 and got["valid"] and got["windows"] == 98 and got["problems"] == []
    bad = sample_frame.copy()
    bad.at[bad.index[3], "label"] = None
    code, out, _ = run(["validate", str(write_frame(bad, "bad.parquet")), "--json"], capsys)
    got = json.loads(out)
    assert code == 2 and not got["valid"] and any("column 'label'" in p for p in got["problems"])


def test_validate_out_naming_a_file_is_one_line_and_exit_2(sample_dir, tmp_path, capsys):
    """It was a raw FileExistsError and exit 1."""
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    code, out, err = run(["validate", str(sample_dir / "train.parquet"), "--out", str(target)], capsys)
    assert code == 2 and err.splitlines() == ["error: ConfigError", f"  --out {target}: is a file; give a folder "
                                              "for manifest.json"]
    assert target.read_text() == "mine" and "Traceback" not in err


def test_gate_run_reports_its_result_as_json(sample_dir, tmp_path, capsys):
    code, out, _ = run(["gate", "run", "validate", "--data", str(sample_dir / "train.parquet"),
                        "--out", str(tmp_path / "g0"), "--json"], capsys)
    got = json.loads(out)
    assert code == 0 and got["gate"] == "validate" and got["status"] == "passed"


@pytest.mark.parametrize("env,argv,code,phrase", [
    ({"MOOLA_RUNNER": "ssh"}, ["gate", "run", "validate", "--data", "{data}", "--out", "{tmp}/g"], 2,
     "MOOLA_SSH_HOST is not set"),
    ({}, ["pods"], 2, "RUNPOD_API_KEY is not set"),
    ({}, ["report"], 2, "no run with a decision report yet"),
    ({}, ["report", "../etc"], 2, "give a run's folder name"),
    ({}, ["sample-data", "/proc/moola-no-such/dir"], 1, "/proc/moola-no-such"),  # the OS refuses: infrastructure
])
def test_the_exit_code_table_on_representative_bad_inputs(env, argv, code, phrase, sample_dir, tmp_path,
                                                           monkeypatch, capsys):
    """Settings missing are configuration (2), as an invalid option is; a refusal of the OS is
    infrastructure (1); each is one line and no traceback."""
    monkeypatch.setenv("MOOLA_ARTIFACTS", str(tmp_path / "art"))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    argv = [a.format(data=sample_dir / "train.parquet", tmp=tmp_path) for a in argv]
    got, _, err = run(argv, capsys)
    assert got == code and phrase in err and "Traceback" not in err, err


def test_registry_history_lists_every_decision_and_rollback(gate_dirs, tmp_path, monkeypatch, capsys):
    """Decisions that kept production were missing: history showed pointer changes only."""
    from moola.registry.store import Registry
    art = tmp_path / "art"
    monkeypatch.setenv("MOOLA_ARTIFACTS", str(art))
    reg = Registry(art)
    result = json.loads((gate_dirs["baseline"] / "result.json").read_text())
    v1 = reg.register("baseline", gate_dirs["baseline"], {"result": result})
    reg.set_production(v1, "ship", "first")
    v2 = reg.register("baseline", gate_dirs["baseline"], {"result": result})
    reg.set_production(v2, "ship", "second")
    for action, before, after, at in (("ship", None, v1, "2026-12-01T00:00:00Z"),
                                      ("ship", v1, v2, "2026-12-02T00:00:00Z"),
                                      ("revert", v2, v2, "2026-12-03T00:00:00Z")):
        reg.append({"kind": "decision", "at": at, "decision": {
            "action": action, "candidate": "baseline", "reasons": [f"{action} because"],
            "production_before": before.stored() if before else None, "production_after": after.stored()}})
    reg.rollback()
    code, out, _ = run(["registry", "history", "--json"], capsys)
    rows = json.loads(out)
    assert code == 0 and [r["action"] for r in rows] == ["ship", "ship", "revert", "rollback"]
    assert rows[2]["production_before"] == rows[2]["production_after"] == "baseline v2"
    code, out, _ = run(["registry", "history"], capsys)
    assert "revert: production stays baseline v2  (revert because)" in out
    assert "rollback: production -> baseline v1" in out


def test_report_prints_a_runs_decision(tmp_path, monkeypatch, capsys):
    art = tmp_path / "art"
    monkeypatch.setenv("MOOLA_ARTIFACTS", str(art))
    for run_name, text in (("20261201-000000-aaaaaa", "# Decision: **ship**\n"),
                           ("20261202-000000-bbbbbb", "# Decision: **revert**\n")):
        (art / "runs" / run_name).mkdir(parents=True)
        (art / "runs" / run_name / "decision.md").write_text(text)
    assert run(["report"], capsys)[1] == "# Decision: **revert**\n\n"  # the latest
    code, out, _ = run(["report", "20261201-000000-aaaaaa", "--json"], capsys)
    assert code == 0 and json.loads(out)["markdown"] == "# Decision: **ship**\n"
