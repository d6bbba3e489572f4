"""Ours against the PyTorch eager yardsticks, round by round, as a table.

    .venv/bin/python benches/compare_pytorch.py [--rounds 3] [--steps 9]
        [--device cpu|cuda] [--precision fp32|bf16|fp16] [--channels-last]
        [--threads 2] [--only multiscale|mu-acgan] [--demo-gan]

Each round runs, one after the other, `scintigan bench` and the matching
`benches/pytorch_*.py` with the same size (256x128), batch (4 for the
multi-scale classifier, 2 for MU-ACGAN), steps, device, precision, layout
and thread count, then prints the medians and ours / PyTorch. Build first
(`make build`).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {"multiscale": (4, "pytorch_multiscale.py"), "mu-acgan": (2, "pytorch_mu_acgan.py")}


def run(cmd: list, threads: int) -> str:
    # libtorch takes its intra-op thread count from OMP_NUM_THREADS at start.
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--only", choices=sorted(CASES))
    ap.add_argument("--demo-gan", action="store_true",
                    help="MU-ACGAN only, at the demo's sizes: 128x32, batch 8, base 8, latent 32")
    args = ap.parse_args()
    size, extra = "256x128", []
    if args.demo_gan:
        args.only, size = "mu-acgan", "128x32"
        CASES["mu-acgan"] = (8, CASES["mu-acgan"][1])
        extra = ["--base-channels", "8", "--latent-dim", "32"]
    common = ["--steps", str(args.steps), "--device", args.device, "--precision", args.precision]
    if args.channels_last:
        common.append("--channels-last")
    ours_bin = str(ROOT / "target/release/scintigan")
    print(f"{size}, {args.device}, {args.precision}{', channels-last' if args.channels_last else ''}, "
          f"{args.threads} threads, {args.steps} timed steps after one warm-up\n")
    print("| step | round | ours, median s | PyTorch, median s | ours / PyTorch |")
    print("|---|---:|---:|---:|---:|")
    for arch, (batch, script) in CASES.items():
        if args.only and arch != args.only:
            continue
        ratios = []
        for r in range(1, args.rounds + 1):
            ours = json.loads(run([ours_bin, "bench", "--arch", arch, "--size", size,
                                   "--batch", str(batch), "--json", *common, *extra], args.threads))
            if ours["threads"] != args.threads:
                sys.exit(f"scintigan bench ran {ours['threads']} threads, not {args.threads}")
            ours = ours["median_seconds"]
            sizes = ["--size", size, "--batch", str(batch), *extra] if arch == "mu-acgan" else []
            text = run([sys.executable, str(ROOT / "benches" / script),
                        "--threads", str(args.threads), *common, *sizes], args.threads)
            found = re.search(r"median ([0-9.]+) s", text)
            if not found:
                sys.exit(f"{script} printed no median: {text.strip()}")
            theirs = float(found.group(1))
            ratios.append(ours / theirs)
            print(f"| {arch}, batch {batch} | {r} | {ours:.3f} | {theirs:.3f} | {ours / theirs:.2f} |", flush=True)
        print(f"| {arch}, batch {batch} | mean | | | {statistics.mean(ratios):.2f} |", flush=True)


if __name__ == "__main__":
    main()
