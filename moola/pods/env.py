"""A pod made ready to run gates without a person: the pinned environment, installed once.

The pins live in ``pod.lock`` (beside this file; ``make`` installs the same pins locally as
constraints). A pod's image brings Python and a CUDA build of torch; whatever the lock pins that
the image lacks, or has at another version, is installed with ``pip install --no-deps --target``
into ``<workdir>/env/<lock digest>/site`` on the pod's persistent volume, so a stopped and
resumed pod reuses it (warm). A ``READY`` file is written only after a probe imported every
package the gates need; gates then run with that folder on ``PYTHONPATH``.

``wheelhouse`` (a local folder of wheels) makes a pod install without reaching an index: the
wheels it needs are uploaded content-addressed and pip runs with ``--no-index``.

    python -m moola.pods.env --write-lock    # regenerate pod.lock from this environment
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shlex
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from moola.core.errors import RemotePermanent
from moola.remote.check import CORE
from moola.remote.ssh import sftp_exists

log = logging.getLogger("moola.pods.env")

LOCK = Path(__file__).with_name("pod.lock")
# The image's own CUDA build of torch is used: a pinned CPU wheel would replace it. Its version is
# still checked against what moola needs (check.CORE, as pyproject.toml says).
FROM_IMAGE = ("torch",)


def image_requirements_met(have: dict[str, str | None]) -> str | None:
    """None when the image's own packages (FROM_IMAGE) satisfy CORE's requirements, else why not."""
    from packaging.requirements import Requirement
    from packaging.version import InvalidVersion, Version
    problems = []
    for req in (Requirement(r) for r in CORE.values()):
        name = canonical(req.name)
        if name not in FROM_IMAGE:
            continue
        version = have.get(name)
        try:
            ok = version is not None and Version(version.split("+")[0]) in req.specifier
        except InvalidVersion:
            ok = False
        if not ok:
            problems.append(f"{name} {version or 'missing'} does not satisfy {req} (the image must bring it: "
                            "choose a pod image with a newer torch)")
    return "; ".join(problems) or None


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """{distribution name (canonical): pinned version} from ``name==version`` lines."""
    pins = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if not m:
            raise RemotePermanent(f"{path}:{n}: expected `name==version`, found {line!r}")
        pins[canonical(m.group(1))] = m.group(2)
    return pins


def lock_digest(pins: dict[str, str]) -> str:
    text = "".join(f"{k}=={v}\n" for k, v in sorted(pins.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def to_install(have: dict[str, str | None], pins: dict[str, str]) -> list[str]:
    """The pins the remote lacks or has at another version, as requirements (a pure function)."""
    return [f"{name}=={version}" for name, version in sorted(pins.items()) if have.get(name) != version]


# Run remotely with the env's site folder first on sys.path: versions of every pinned
# distribution, and whether each module the gates import loads.
PROBE = """
import importlib, importlib.metadata as md, json, sys
pins, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
have = {}
for name in pins:
    try:
        have[name] = md.version(name)
    except md.PackageNotFoundError:
        have[name] = None
broken = {}
for m in modules:
    try:
        importlib.import_module(m)
    except Exception as exc:
        broken[m] = f"{type(exc).__name__}: {exc}"[:200]
print("MOOLA_ENV " + json.dumps({"have": have, "broken": broken, "python": sys.version.split()[0]}))
"""


@dataclass
class EnvReport:
    site: str                  # remote folder to put on PYTHONPATH
    warm: bool                 # already installed by an earlier run (READY found and probed)
    installed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    python: str = ""


def probe(runner, client, site: PurePosixPath, pins: dict[str, str], imports: bool = True) -> dict:
    """Versions of the pinned distributions as the gates will see them; with ``imports``, also
    whether each module the gates need loads (seconds: torch, sktime and numba are big)."""
    argv = [runner.python, "-c", PROBE, json.dumps(sorted(pins)), json.dumps(list(CORE) if imports else [])]
    code, tail = runner.execute(client, argv, env={"PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"})
    for line in tail.splitlines():
        if line.startswith("MOOLA_ENV "):
            return json.loads(line[len("MOOLA_ENV "):])
    raise RemotePermanent(f"{runner.host}: cannot run {runner.python} to probe its packages (exit {code}):\n{tail}")


def ensure_env(runner, wheelhouse: Path | None = None, lock: Path = LOCK) -> EnvReport:
    """Make the pod behind ``runner`` (an SSHRunner) ready for the gates; idempotent and cheap when warm."""
    t0 = time.perf_counter()
    pins = {k: v for k, v in read_lock(lock).items() if k not in FROM_IMAGE}
    root = runner.workdir / "env" / lock_digest(pins)
    site, ready = root / "site", root / "READY"
    with runner.session() as client:
        sftp = client.open_sftp()
        if sftp_exists(sftp, ready):  # imports were proven when READY was written: versions suffice
            seen = probe(runner, client, site, pins, imports=False)
            if not to_install(seen["have"], pins) and not seen["broken"]:
                return EnvReport(str(site), True, [], time.perf_counter() - t0, seen["python"])
            log.warning("pod env %s is marked ready but no longer probes clean: installing again", root)
        seen = probe(runner, client, site, {**pins, **dict.fromkeys(FROM_IMAGE)}, imports=False)
        wrong = image_requirements_met(seen["have"])
        if wrong:
            raise RemotePermanent(f"{runner.host}: the pod's image cannot run the gates: {wrong}")
        need = to_install(seen["have"], pins)
        tmp = root / f"site.{uuid.uuid4().hex[:8]}.part"
        if need:
            log.info("pod env: installing %d pinned package(s) into %s: %s", len(need), site, " ".join(need))
            # --no-compile: Python writes the bytecode of what the gates import, on first import
            pip = [runner.python, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
                   "--disable-pip-version-check", "--target", str(tmp)]
            if wheelhouse is not None:
                pip += ["--no-index", "--find-links", str(_ship_wheels(runner, client, sftp, wheelhouse, need))]
            runner.execute(client, ["mkdir", "-p", str(root)])
            # the packages already in site stay valid: copy them over, then add what is missing
            code, tail = runner.execute(client, ["sh", "-c", 'if [ -d "$1" ]; then cp -a "$1" "$2"; fi', "sh",
                                               str(site), str(tmp)])
            log.info("pod env: pip install of %d package(s) started (a minute or two from PyPI)", len(need))
            code, tail = runner.execute(client, pip + need, stream_as="pip")
            if code != 0:
                runner.execute(client, ["rm", "-rf", str(tmp)])  # our own partial folder only
                raise RemotePermanent(f"{runner.host}: pip install of {' '.join(map(shlex.quote, need))} failed "
                                      f"(exit {code}):\n{tail}")
            # swap in the new site folder; the old one (ours, same lock digest) goes
            code, tail = runner.execute(client, ["sh", "-c", 'rm -rf "$2" && mv -T "$1" "$2"', "sh", str(tmp),
                                               str(site)])
            if code != 0:
                raise RemotePermanent(f"{runner.host}: could not publish {site}: {tail}")
        log.info("pod env: installed; checking that every package imports")
        seen = probe(runner, client, site, pins)
        still = to_install(seen["have"], pins)
        if still or seen["broken"]:
            raise RemotePermanent(f"{runner.host}: the pod's environment is not usable after installing: "
                                  + "; ".join([f"{r} missing" for r in still]
                                              + [f"import {m}: {e}" for m, e in seen["broken"].items()]))
        runner.execute(client, ["mkdir", "-p", str(root)])  # also when the image had every pin
        with sftp.open(str(ready), "w") as f:
            f.write(json.dumps({"pins": pins, "installed": need, "python": seen["python"]}))
        return EnvReport(str(site), False, need, time.perf_counter() - t0, seen["python"])


def _ship_wheels(runner, client, sftp, wheelhouse: Path, need: list[str]) -> PurePosixPath:
    """Upload the wheelhouse's wheels for ``need`` (by file name) into the pod's wheel folder."""
    names = {canonical(r.split("==")[0]): r.split("==")[1] for r in need}
    remote = runner.workdir / "wheels"
    runner.execute(client, ["mkdir", "-p", str(remote)])
    found = set()
    for whl in sorted(Path(wheelhouse).glob("*.whl")):
        dist, version = whl.name.split("-")[:2]
        if names.get(canonical(dist)) == version:
            runner._upload_if_missing(client, sftp, whl, remote / whl.name)
            found.add(canonical(dist))
    missing = sorted(set(names) - found)
    if missing:
        raise RemotePermanent(f"wheelhouse {wheelhouse}: no wheel for " + ", ".join(f"{m}=={names[m]}" for m in missing))
    return remote


def lock_from_environment() -> dict[str, str]:
    """The pins of the gates' packages and everything they need, as installed here (minus FROM_IMAGE)."""
    import importlib.metadata as md

    from packaging.requirements import Requirement
    todo = [canonical(Requirement(r).name) for r in CORE.values()]
    pins: dict[str, str] = {}
    while todo:
        name = todo.pop()
        if name in pins or name in FROM_IMAGE:
            continue
        dist = md.distribution(name)
        pins[name] = dist.version
        for r in dist.requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonical(req.name))
    return pins


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m moola.pods.env")
    ap.add_argument("--write-lock", action="store_true", help=f"write {LOCK.name} from this environment")
    args = ap.parse_args(argv)
    if args.write_lock:
        pins = lock_from_environment()
        LOCK.write_text("# The pod's pinned environment (moola/pods/env.py); also `make`'s constraints.\n"
                        "# Regenerate: python -m moola.pods.env --write-lock\n"
                        + "".join(f"{k}=={v}\n" for k, v in sorted(pins.items())))
        print(f"{LOCK}: {len(pins)} pins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
