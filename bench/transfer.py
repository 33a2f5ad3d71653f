"""Fetch throughput and remote overhead over a loopback OpenSSH sshd that this script starts.

    .venv/bin/python bench/transfer.py [--mb 200]

1. A gate folder holding one MB-sized file is fetched with the project's verified fetch
   (SFTP with prefetch, sha256 check, atomic rename) and the same file with OpenSSH `scp`.
2. The remote overhead of a small gate (validate): wall time over ssh minus the same gate
   run locally in a subprocess (goal <= 2 s).
The same comparison is repeated with both sides capped to a --link-mbit link (scp -l), which is
what a pod over the internet looks like: there the sha256 taken while the file arrives is free.
The last line is `ratio R` = fetch throughput / scp throughput, the median over --repeat
interleaved pairs (goal >= 1.0). The fetch uses AES-GCM; plain `scp` uses OpenSSH's default
(chacha20-poly1305): a line also compares against scp with the fetch's own cipher.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fakes.sshd_server

from moola.core.seal import write_manifest  # noqa: E402
from moola.data.sample import write_sample  # noqa: E402
from moola.gates.call import GateCall
from moola.remote.runner import LocalRunner  # noqa: E402
from moola.remote.ssh import SCP_CIPHERS  # noqa: E402
from tests.fakes.sshd_server import make_sshd  # noqa: E402


def compare(runner, scp: list[str], src: str, folder: Path, root: Path, args, label: str) -> float:
    """Median over interleaved runs of fetch vs plain scp (and scp with the fetch's cipher)."""
    t_fetch, t_scp, t_same = [], [], []
    for _ in range(args.repeat):  # interleaved, so drift in machine load hits all three alike
        client = runner.connect()
        sftp = client.open_sftp()
        t0 = time.perf_counter()
        runner.fetch(sftp, str(folder), root / "fetched")
        t_fetch.append(time.perf_counter() - t0)
        client.close()
        t0 = time.perf_counter()
        subprocess.run([*scp, src, str(root / "scp.bin")], check=True)
        t_scp.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([*scp, "-c", SCP_CIPHERS, src, str(root / "scp.bin")], check=True)
        t_same.append(time.perf_counter() - t0)
    ratios = [s_ / f for f, s_ in zip(t_fetch, t_scp)]
    f_med, s_med, same_med = (statistics.median(t) for t in (t_fetch, t_scp, t_same))
    print(f"[{label}] fetch (verified: scp by size, sha256 while it arrives, atomic rename), median of "
          f"{args.repeat}: {args.mb} MB in {f_med:.2f} s = {args.mb / f_med:.0f} MB/s")
    print(f"[{label}] scp (OpenSSH defaults): {args.mb} MB in {s_med:.2f} s = {args.mb / s_med:.0f} MB/s")
    print(f"[{label}] scp -c {SCP_CIPHERS.split(',')[0]} (the fetch's cipher, no check): "
          f"{args.mb / same_med:.0f} MB/s; fetch / that = {same_med / f_med:.2f}")
    print(f"[{label}] per-run ratios fetch/scp: " + " ".join(f"{r:.2f}" for r in ratios))
    return statistics.median(ratios)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--link-mbit", type=int, default=800, help="the capped run: a link of this many Mbit/s")
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
            scp = ["scp", "-q", "-i", str(server.client_key), "-P", str(server.port),
                   "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "BatchMode=yes"]
            src = f"127.0.0.1:{folder / 'blob.bin'}"
            ratio = compare(runner, scp, src, folder, root, args, "loopback, no cap")
            link = compare(server.runner(root / "work", limit_kbit=args.link_mbit * 1000),
                           [*scp, "-l", str(args.link_mbit * 1000)], src, folder, root, args,
                           f"a {args.link_mbit} Mbit/s link (scp -l on both)")

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
            print(f"ratio on {args.link_mbit} Mbit/s link {link:.2f}")
            print(f"ratio {ratio:.2f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
