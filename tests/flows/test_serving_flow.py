"""decide refuses a candidate that does not serve, and says so (issue 10)."""

from __future__ import annotations

import json
import shutil

from moola.core.seal import write_manifest
from tests.fakes.results import GATE0, ran
from tests.flows.conftest import jsonl


def test_decide_never_ships_a_folder_that_serves_differently(prefect_server, gate_dirs, sample_dir, tmp_path):
    from moola_flows.decide import decide_flow
    folder = tmp_path / "baseline"
    shutil.copytree(gate_dirs["baseline"], folder)
    cfg = json.loads((folder / "model.json").read_text())
    cfg["normalizer"]["scale"] *= 3.0
    (folder / "model.json").write_text(json.dumps(cfg))
    write_manifest(folder)
    result = json.loads((folder / "result.json").read_text())
    art = tmp_path / "art"
    state = decide_flow({"validate": GATE0, "baseline": ran(folder, result)},
                        artifacts=str(art), data=str(sample_dir / "train.parquet"), return_state=True)
    assert state.is_failed()
    decision = jsonl(art)[-1]["decision"]
    assert decision["action"] == "blocked" and decision["production_after"] is None
    assert any("baseline does not serve: served predictions differ" in r for r in decision["reasons"])
    assert not (art / "registry.json").exists() and not (art / "models").exists()


def test_decide_ships_a_folder_that_serves_and_says_so(prefect_server, gate_dirs, sample_dir, tmp_path):
    from moola_flows.decide import decide_flow
    result = json.loads((gate_dirs["baseline"] / "result.json").read_text())
    art = tmp_path / "art"
    decide_flow({"validate": GATE0, "baseline": ran(gate_dirs["baseline"], result)},
                artifacts=str(art), data=str(sample_dir / "train.parquet"))
    decision = jsonl(art)[-1]["decision"]
    assert decision["action"] == "ship" and decision["production_after"]["version"] == 1
    assert any("baseline serves: a fresh `moola predict` reproduces" in r for r in decision["reasons"])


def test_moola_artifacts_from_dotenv_is_the_one_registry_root(prefect_server, gate_dirs, sample_dir, tmp_path,
                                                             monkeypatch, capsys):
    """Issue 10: the flows ignored MOOLA_ARTIFACTS (and `.env`) while `moola registry` read it, and
    registry pointers only worked from the directory the flow ran in."""
    from moola_flows.decide import decide_flow

    from moola.cli.main import main
    monkeypatch.delenv("MOOLA_ARTIFACTS", raising=False)
    monkeypatch.delenv("MOOLA_ENV_FILE", raising=False)  # the suite reads no .env (tests/conftest.py); this test does
    work = tmp_path / "worker"
    work.mkdir()
    (work / ".env").write_text("MOOLA_ARTIFACTS=./reg\n")
    monkeypatch.chdir(work)
    result = json.loads((gate_dirs["baseline"] / "result.json").read_text())
    decide_flow({"validate": GATE0, "baseline": ran(gate_dirs["baseline"], result)})
    assert (work / "reg" / "registry.json").is_file() and not (work / "artifacts").exists()
    # the same registry from `moola`, in the same directory (.env) and from elsewhere (environment)
    assert main(["registry", "show"]) == 0 and "baseline v1" in capsys.readouterr().out
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("MOOLA_ARTIFACTS", str(work / "reg"))
    out = elsewhere / "p.parquet"
    assert main(["predict", str(sample_dir / "train.parquet"), "--out", str(out)]) == 0 and out.is_file()
