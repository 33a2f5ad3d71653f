"""A loopback pod's "image": a Python that has torch, numpy, pandas... but lacks what a fresh RunPod
image lacks (pydantic, safetensors, scikit-base and their own needs), and a local wheelhouse
holding exactly those, built from this environment's installed files (no index needed)."""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata as md
import io
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

# distributions a fresh pod image does not have (canonical name -> import folder). The device image
# in ../shared/NOTES.md lacks these and sktime; sktime itself stays here (it cannot import without
# scikit-base, so the pod still cannot run a gate before the install) because a freshly installed
# sktime recompiles its numba kernels (40-60 s on a 2-core CI machine), which the suite cannot afford.
MISSING = {"scikit-base": "skbase", "pydantic": "pydantic", "pydantic-core": "pydantic_core",
           "annotated-types": "annotated_types", "typing-inspection": "typing_inspection",
           "safetensors": "safetensors"}


def make_image_python(root: Path, seen_at: str | None = None) -> Path:
    """A venv whose site reaches this environment's packages, minus MISSING (and moola itself).
    ``seen_at``: where ``root`` is mounted in the pods that use it (tests/fakes/runpod_emulator.py)."""
    site = Path(sysconfig.get_paths()["purelib"])
    farm = root / "image-site"
    farm.mkdir(parents=True)
    hidden = set(MISSING.values()) | {"moola", "flows"}
    hidden_dists = {n.replace("-", "_") for n in MISSING} | {"moola"}
    for entry in site.iterdir():
        stem = entry.name.split("-")[0]
        if entry.name in hidden or stem in hidden_dists or entry.name.startswith("__editable__") or \
                entry.suffix == ".pth":
            continue
        (farm / entry.name).symlink_to(entry)
    base = Path(sys.base_prefix) / "bin" / "python3"
    venv = root / "image"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    venv_site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip()
    (Path(venv_site) / "image.pth").write_text(f"{seen_at}/image-site\n" if seen_at else f"{farm}\n")
    return py


def wheel_from_installed(dist_name: str, out: Path) -> Path:
    """Re-pack an installed distribution as a wheel (stored, not compressed: it is only copied)."""
    dist = md.distribution(dist_name)
    info = Path(dist._path)  # the .dist-info folder
    site = info.parent
    tags = [line.split(":", 1)[1].strip() for line in (info / "WHEEL").read_text().splitlines()
            if line.startswith("Tag:")]
    py, abi, plat = (".".join(sorted({t.split("-")[i] for t in tags})) for i in range(3))
    name = f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-{py}-{abi}-{plat}.whl"
    record_rel = f"{info.name}/RECORD"
    rows = []
    path = out / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for row in csv.reader(io.StringIO((info / "RECORD").read_text())):
            rel = row[0]
            if rel.startswith("..") or "__pycache__" in rel or rel == record_rel or \
                    rel.endswith(("INSTALLER", "REQUESTED", "direct_url.json")):
                continue
            data = (site / rel).read_bytes()
            z.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append(f"{rel},sha256={digest},{len(data)}")
        z.writestr(record_rel, "\n".join(rows + [f"{record_rel},,"]) + "\n")
    return path


def make_wheelhouse(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for dist in MISSING:
        wheel_from_installed(dist, out)
    return out
