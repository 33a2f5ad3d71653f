"""Fetch throughput and remote overhead over a loopback OpenSSH sshd that this script starts.

    .venv/bin/python bench/transfer.py [--mb 200]

1. A gate folder holding one MB-sized file is fetched with the project's verified fetch
   (SFTP with prefetch, sha256 check, atomic rename) and the same file with OpenSSH `scp`.
2. The remote overhead of a small gate (validate): wall time over ssh minus the same gate
   run locally in a subprocess (goal <= 2 s).
The last line is `ratio R` = fetch throughput / scp throughput (goal >= 1.0).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.remote.sshd_server

from moola.data.sample import write_sample  # noqa: E402
from moola.modelfile import write_manifest  # noqa: E402
from moola.remote.runner import GateCall, LocalRunner  # noqa: E402
from tests.remote.sshd_server import make_sshd  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "sshd").mkdir()
        server = make_sshd(root / "sshd")
        server.start()
        try:
            folder = root / "remote_folder"
            folder.mkdir()
            with open(folder / "blob.bin", "wb") as f:
                f.write(os.urandom(args.mb * 1024 * 1024))
            write_manifest(folder)
            runner = server.runner(root / "work")
            client = runner.connect()
            sftp = client.open_sftp()
            t0 = time.perf_counter()
            runner.fetch(sftp, str(folder), root / "fetched")
            t_fetch = time.perf_counter() - t0
            client.close()
            t0 = time.perf_counter()
            subprocess.run(["scp", "-q", "-i", str(server.client_key), "-P", str(server.port),
                            "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "BatchMode=yes",
                            f"127.0.0.1:{folder / 'blob.bin'}", str(root / "scp.bin")], check=True)
            t_scp = time.perf_counter() - t0
            fetch_mbs, scp_mbs = args.mb / t_fetch, args.mb / t_scp
            print(f"fetch (verified: sftp or scp by size, sha256 check, atomic rename): {args.mb} MB in {t_fetch:.2f} s = {fetch_mbs:.0f} MB/s")
            print(f"scp: {args.mb} MB in {t_scp:.2f} s = {scp_mbs:.0f} MB/s")

            data, _ = write_sample(root / "data", n_unlabeled=10)
            call = lambda out: GateCall("validate", data, out)  # noqa: E731
            runner.run_gate(call(root / "warm"))  # code bundle and inputs uploaded once
            t0 = time.perf_counter()
            runner.run_gate(call(root / "remote_gate"))
            t_remote = time.perf_counter() - t0
            t0 = time.perf_counter()
            LocalRunner().run_gate(call(root / "local_gate"))
            t_local = time.perf_counter() - t0
            print(f"validate gate: over ssh {t_remote:.2f} s, local subprocess {t_local:.2f} s, "
                  f"remote overhead {t_remote - t_local:.2f} s (goal <= 2 s)")
            print(f"ratio {fetch_mbs / scp_mbs:.2f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
