"""One Prefect test server for the whole session (starting one costs ~10 s)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

CONFIG = str(Path(__file__).resolve().parents[1] / "flows_test_config.json")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect_home"))
    from prefect.testing.utilities import prefect_test_harness
    with prefect_test_harness(server_startup_timeout=120):
        yield


def jsonl(root: Path) -> list[dict]:
    p = root / "experiment_results.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []
