#!/usr/bin/env bash
# `make demo`: the paper's pipeline on synthetic data, watched in the dashboard.
#
#   scripts/demo.sh                 in this folder
#   DEMO_DIR=/tmp/d scripts/demo.sh in another project folder
#   DEMO_SCALE=smoke scripts/demo.sh  tiny sizes (the end-to-end test)
#
# 1. writes phantom data sets once: chest X-rays in the COVID-19 Radiography
#    Database's layout (data/demo/chest) and whole-body bone scans as DICOM
#    files in every layout (data/demo/bone-dicom), ingested to 16-bit PNGs
#    with a manifest (data/demo/bone);
# 2. writes the three-stage pipeline (chest pretraining, bone fine-tuning
#    with generation, multi-scale classifier) as configs/demo-pipeline.toml;
# 3. on a terminal: opens the dashboard, which starts the daemon, which
#    queues the pipeline (q detaches; the run goes on). Without one (CI,
#    pipes): runs the pipeline in the foreground.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/scintigan"
scale=${DEMO_SCALE:-demo}
dir=${DEMO_DIR:-$root}
mkdir -p "$dir"
cd "$dir"

case $scale in
  # Whole-body frames are 4:1; lesions are a few pixels wide at 1024 rows
  # and vanish below 128: 256x64 keeps them (and costs what 128x64 does).
  demo)  chest=200; patients=60; gan_epochs=6; pre_epochs=4; cls_epochs=10; size="[256, 64]" ;;
  smoke) chest=24;  patients=12; gan_epochs=1; pre_epochs=1; cls_epochs=1; size="[64, 32]" ;;
  *) echo "error: DEMO_SCALE=$scale: expected demo or smoke" >&2; exit 1 ;;
esac

data=data/demo; [[ $scale == demo ]] || data=data/demo-$scale
if [[ ! -f $data/chest/.done ]]; then
  "$bin" data phantom --kind chest --out "$data/chest" --patients "$chest" --seed 1
  touch "$data/chest/.done"
fi
if [[ ! -f $data/bone/manifest.csv ]]; then
  "$bin" data phantom --out "$data/bone-dicom" --patients "$patients" --seed 1 --layout mixed --size 512x128
  "$bin" data ingest "$data/bone-dicom/dicom" --out "$data/bone" --labels "$data/bone-dicom/labels.csv" --size 256x64
fi

mkdir -p configs
sed -e "s|@DATA@|$data|g" -e "s|@SIZE@|$size|g" -e "s|@GAN_EPOCHS@|$gan_epochs|g" \
    -e "s|@PRE_EPOCHS@|$pre_epochs|g" -e "s|@CLS_EPOCHS@|$cls_epochs|g" \
    "$root/configs/examples/demo-pipeline.toml.in" > configs/demo-pipeline.toml.tmp
mv configs/demo-pipeline.toml.tmp configs/demo-pipeline.toml
"$bin" check configs/demo-pipeline.toml

if [[ -t 0 && -t 1 && -z ${CI:-} ]]; then
  exec "$bin"
else
  exec "$bin" run configs/demo-pipeline.toml
fi
