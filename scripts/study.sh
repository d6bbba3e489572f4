#!/usr/bin/env bash
# `make study`: the paper's Tables 3 and 4 on phantoms at a study scale,
# 3 seeds, in under 2 hours on 2 CPU cores (README, "The paper's effects at
# a study scale").
#
#   scripts/study.sh                   in study/ under this folder
#   STUDY_DIR=/tmp/s scripts/study.sh  in another project folder
#   STUDY_SEEDS=1 scripts/study.sh     fewer seeds
#
# One `experiment table4 --scale study`: per seed an ACGAN and an MU-ACGAN
# pipeline (the latter pretrained on chest phantoms), each balancing the
# classes with generated images, and one classifier per training set 1-5.
# Its report measures the two GANs as Table 3 does (SSIM, diversity, real
# ceiling per class), so Table 3 comes from the same runs. The report and
# its charts land in $STUDY_DIR/runs/experiments/table4/<tag>/, with the wall
# time in study-time.txt beside them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/scintigan"
dir=${STUDY_DIR:-$root/study}
seeds=${STUDY_SEEDS:-3}
mkdir -p "$dir/configs"
cd "$dir"
start=$(date +%s)
"$bin" experiment table4 --scale study --seeds "$seeds"
end=$(date +%s)
out=runs/experiments/table4/$(cat runs/experiments/table4/latest)
echo "experiment table4 --scale study --seeds $seeds: $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s on $(nproc) cores" | tee "$out/study-time.txt"
"$bin" daemon stop >/dev/null 2>&1 || true
echo "report: $dir/$out/report.md"
