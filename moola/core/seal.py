"""A sealed folder: ``MANIFEST.sha256`` lists the sha256 of every file of a gate's or a model's
folder; a folder is trusted only when every file matches and nothing rides along unlisted. Also
the rule for which folders a gate may replace (only ones it sealed)."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

from moola.core.errors import ConfigError, ModelFileError
from moola.core.files import sha256_file

MANIFEST = "MANIFEST.sha256"


def write_manifest(folder: Path) -> Path:
    """``MANIFEST.sha256`` in sha256sum format over every other file under ``folder``."""
    lines = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            lines.append(f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}")
    out = folder / MANIFEST
    out.write_text("\n".join(lines) + "\n")
    return out


def parse_manifest(text: str) -> dict[str, str]:
    """{relative path: sha256}; refuses paths that could escape the folder."""
    entries = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, rel = line.partition("  ")
        p = PurePosixPath(rel)
        if (len(digest) != 64 or not rel or p.is_absolute() or ".." in p.parts or "\\" in rel
                or rel.startswith("~")):
            raise ModelFileError(f"{MANIFEST} line {n}: refusing entry {rel!r} (must be a relative "
                                 "path inside the folder with a sha256)")
        entries[str(p)] = digest
    return entries


def verify_folder(folder: Path, expected_manifest_sha256: str | None = None) -> dict[str, str]:
    """Check every file of the folder against its manifest; raise on any difference.

    The MANIFEST is required, every file it lists must match, and a file it does not list is
    refused (nothing rides along unchecked). With ``expected_manifest_sha256`` (recorded outside
    the folder, by the registry) the MANIFEST itself must be the one recorded: an edit whose
    manifest line was updated too is caught there."""
    folder = Path(folder)
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise ModelFileError(f"{folder}: no {MANIFEST}; a model folder is only trusted with its manifest")
    raw = mpath.read_bytes()
    if expected_manifest_sha256 is not None:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != expected_manifest_sha256:
            raise ModelFileError(f"{mpath}: sha256 {actual} is not the {expected_manifest_sha256} the registry "
                                 "recorded when this version was registered; the folder was changed")
    try:
        entries = parse_manifest(raw.decode())
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"{mpath}: not a text manifest") from exc
    for rel, digest in entries.items():
        p = folder / rel
        if not p.is_file():
            raise ModelFileError(f"{p}: listed in {MANIFEST} but missing")
        actual = sha256_file(p)
        if actual != digest:
            raise ModelFileError(f"{p}: sha256 {actual} does not match {MANIFEST} ({digest})")
    extra = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if (p.is_file() or p.is_symlink()) and p != mpath
                   and p.relative_to(folder).as_posix() not in entries)
    if extra:
        raise ModelFileError(f"{folder}: file(s) not listed in {MANIFEST}: {', '.join(extra[:5])}"
                             + (f" and {len(extra) - 5} more" if len(extra) > 5 else "") + "; refusing the folder")
    return entries


def check_replaceable(out: Path, flag: str = "--out") -> None:
    """A gate may write ``out`` only when it is absent, an empty folder, or an earlier gate
    folder (it holds a MANIFEST.sha256): anything else is the user's and is never replaced."""
    out = Path(out)
    here = Path.cwd().resolve()
    resolved = out.resolve()
    if resolved == here or here.is_relative_to(resolved):
        raise ConfigError(f"{flag} {out}: is the working directory or holds it; give a new folder such as "
                          f"{out / 'gate-out'}")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ConfigError(f"{flag} {out}: exists and is not a folder; give a new folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ConfigError(f"{flag} {out}: exists and holds files that are not a gate's output (no {MANIFEST}); "
                          "moola replaces only absent, empty or earlier gate folders: give a new folder")
    if out.parent.exists() and not out.parent.is_dir():
        raise ConfigError(f"{flag} {out}: {out.parent} is not a folder")
