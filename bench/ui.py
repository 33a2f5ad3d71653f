"""The Prefect UI as a person sees it (issue 15), checked in a real headless Chromium.

    .venv/bin/python bench/ui.py [--out bench/ui]        (or: make ui-check)

Starts `prefect server start` on a free loopback port with a fresh PREFECT_HOME, runs the `gates`
flow on the sample data against it (in-process gates, CPU), then opens the UI in Debian's
Chromium driven by Playwright (pointed at the system browser: no browser download) and checks:
- the run list shows the run's state name (Shipped / Reverted / Investigate / Blocked);
- the `gates` run's Artifacts tab lists the decision;
- the decision artifact's embedded forest plot has rendered;
- a gate artifact leads with the pooled figures and its reliability diagram has rendered
  (naturalWidth > 0).
Screenshots land in --out (docs/ui: the docs show them). Needs `apt-get install chromium` (the script says so if missing) and
installs the `playwright` package into the venv when it is absent. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(api: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"prefect server at {api} did not become healthy in {timeout:.0f} s")


def ensure_playwright() -> None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "playwright"], check=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("chromium not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    ensure_playwright()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="moola-ui-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_UI_API_URL": api}
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(api)
        subprocess.run([sys.executable, "-m", "moola.cli", "sample-data", str(work / "data")], check=True, env=env)
        t0 = time.perf_counter()
        flow = subprocess.run([sys.executable, "-m", "flows.gates", "--data", str(work / "data/train.parquet"),
                               "--unlabeled", str(work / "data/unlabeled.parquet"), "--runner", "here",
                               "--artifacts", str(work / "art")], env=env, cwd=ROOT, capture_output=True, text=True)
        print(f"gates flow: exit {flow.returncode} in {time.perf_counter() - t0:.0f} s; "
              + (flow.stdout.strip().splitlines() or ["(no output)"])[0])
        decision = json.loads((work / "art/experiment_results.jsonl").read_text().splitlines()[-1])["decision"]
        expected = {"ship": "Shipped", "revert": "Reverted", "investigate": "Investigate", "blocked": "Blocked"}[
            decision["action"]]
        return check_ui(f"http://127.0.0.1:{port}", api, chromium, expected, args.out)
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def api_post(api: str, path: str, body: dict) -> list:
    req = urllib.request.Request(f"{api}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def check_ui(ui: str, api: str, chromium: str, expected_state: str, out: Path) -> int:
    from playwright.sync_api import sync_playwright
    runs = api_post(api, "/flow_runs/filter", {"flow_runs": {"name": {"like_": "gates-"}}, "limit": 5})
    run = runs[0]
    arts = api_post(api, "/artifacts/filter", {"artifacts": {"key": {"any_": ["gate-1-baseline"]}}, "limit": 5})
    decision = api_post(api, "/artifacts/filter", {"artifacts": {"key": {"any_": ["decision"]}}, "limit": 5})
    results = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS[1:], headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{ui}/runs", wait_until="networkidle")
        page.wait_for_timeout(3000)
        page.screenshot(path=str(out / "run-list.png"))
        results["run list shows the state name"] = expected_state in page.inner_text("body")
        page.goto(f"{ui}/runs/flow-run/{run['id']}", wait_until="networkidle")
        page.wait_for_timeout(2000)
        page.get_by_text("Artifacts", exact=True).first.click()
        page.wait_for_timeout(3000)
        page.screenshot(path=str(out / "gates-run-artifacts.png"), full_page=True)
        results["gates run lists the decision artifact"] = "decision" in page.inner_text("body").lower()
        page.goto(f"{ui}/artifacts/artifact/{decision[0]['id']}", wait_until="networkidle")
        page.wait_for_timeout(3000)
        page.screenshot(path=str(out / "decision-artifact.png"), full_page=True)
        widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        results["decision artifact: forest plot rendered"] = ("Paired F1 differences" in page.inner_text("body")
                                                             and any(w > 0 for w in widths))
        page.goto(f"{ui}/artifacts/artifact/{arts[0]['id']}", wait_until="networkidle")
        page.wait_for_timeout(3000)
        page.screenshot(path=str(out / "gate-artifact.png"), full_page=True)
        widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        body = page.inner_text("body")
        results["gate artifact leads with the pooled figures"] = "every fold" in body and \
            body.find("pooled (") < body.find("last fold (")
        results["reliability diagram rendered (naturalWidth > 0)"] = any(w > 0 for w in widths)
        browser.close()
    for what, ok in results.items():
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    print(f"screenshots: {', '.join(sorted(p.name for p in out.glob('*.png')))} in {out}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
