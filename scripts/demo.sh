#!/usr/bin/env bash
# `make demo`: the paper's pipeline on synthetic data, watched in the dashboard.
#
#   scripts/demo.sh                 in this folder
#   DEMO_DIR=/tmp/d scripts/demo.sh in another project folder
#   DEMO_SCALE=smoke scripts/demo.sh  tiny sizes (the end-to-end test)
#   DEMO_SCALE=paper scripts/demo.sh  the paper's classifier at 256x64 (a GPU box)
#
# 1. writes phantom data sets once: chest X-rays in the COVID-19 Radiography
#    Database's layout (data/demo/chest) and whole-body bone scans as DICOM
#    files in every layout (data/demo/bone-dicom), ingested to 16-bit PNGs
#    with a manifest (data/demo/bone);
# 2. writes the three-stage pipeline (chest pretraining, bone fine-tuning
#    with generation, classifier) as configs/demo-pipeline.toml;
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

# Per scale: chest images, bone patients, image size, GAN width, batch and
# epochs (pretraining, fine-tuning, SSIM interval), and the classifier.
small_cnn_why="The classifier is small-cnn: the paper's multi-scale model (DenseNet121 + VGG16 + ResNeXt50, 41 M parameters) takes seconds per step on 2 CPU cores and does not leave the majority class in this budget; DEMO_SCALE=paper runs it."
case $scale in
  # 128x32 keeps the skeleton (spine, ribs, pelvis, legs) and lets the GAN
  # learn bodies in about 1,000 steps on 2 cores; 173 patients are the
  # paper's 346 images.
  demo)
    chest=200; patients=173; size="[128, 32]"; gan_base=8; gan_batch=8
    pre_epochs=24; pre_ssim_every=6; gan_epochs=40; ssim_every=5
    cls_arch=small-cnn; cls_model=", base_channels = 16"; cls_epochs=30; cls_lr=3e-4
    cls_train='optimizer = "adam", lr_schedule = "cosine", '; aug=4; why=$small_cnn_why ;;
  smoke)
    chest=24; patients=12; size="[64, 32]"; gan_base=8; gan_batch=16
    pre_epochs=1; pre_ssim_every=1; gan_epochs=1; ssim_every=1
    cls_arch=multiscale; cls_model=""; cls_epochs=1; cls_lr=1e-3
    cls_train=""; aug=2; why="Tiny sizes: this scale checks that every stage runs, not that it learns." ;;
  # The paper's classifier at 256x64 (lesions are a few pixels wide at 1024
  # rows and vanish below 128): for a GPU box.
  paper)
    chest=400; patients=173; size="[256, 64]"; gan_base=32; gan_batch=8
    pre_epochs=20; pre_ssim_every=10; gan_epochs=60; ssim_every=10
    cls_arch=multiscale; cls_model=""; cls_epochs=40; cls_lr=1e-4
    cls_train='lr_schedule = "cosine", '; aug=15
    why="The classifier is the paper's multi-scale model (DenseNet121 + VGG16 + ResNeXt50), from scratch unless model.weights names imported ImageNet weights." ;;
  *) echo "error: DEMO_SCALE=$scale: expected demo, smoke or paper" >&2; exit 1 ;;
esac
ingest_size=$(tr -d '[] ' <<<"$size" | tr , x)

data=data/demo; [[ $scale == demo ]] || data=data/demo-$scale
if [[ ! -f $data/chest/.done ]]; then
  "$bin" data phantom --kind chest --out "$data/chest" --patients "$chest" --seed 1
  touch "$data/chest/.done"
fi
if [[ ! -f $data/bone/manifest.csv ]]; then
  "$bin" data phantom --out "$data/bone-dicom" --patients "$patients" --seed 1 --layout mixed --size 512x128
  "$bin" data ingest "$data/bone-dicom/dicom" --out "$data/bone" --labels "$data/bone-dicom/labels.csv" --size "$ingest_size"
fi

mkdir -p configs
sed -e "s|@DATA@|$data|g" -e "s|@SIZE@|$size|g" -e "s|@GAN_BASE@|$gan_base|g" \
    -e "s|@GAN_BATCH@|$gan_batch|g" -e "s|@PRE_EPOCHS@|$pre_epochs|g" -e "s|@PRE_SSIM_EVERY@|$pre_ssim_every|g" \
    -e "s|@GAN_EPOCHS@|$gan_epochs|g" -e "s|@SSIM_EVERY@|$ssim_every|g" \
    -e "s|@CLS_ARCH@|$cls_arch|g" -e "s|@CLS_MODEL@|$cls_model|g" \
    -e "s|@CLS_EPOCHS@|$cls_epochs|g" -e "s|@CLS_LR@|$cls_lr|g" \
    -e "s|@CLS_TRAIN@|$cls_train|g" -e "s|@AUG_FACTOR@|$aug|g" -e "s|@CLASSIFIER_WHY@|$why|g" \
    "$root/configs/examples/demo-pipeline.toml.in" > configs/demo-pipeline.toml.tmp
mv configs/demo-pipeline.toml.tmp configs/demo-pipeline.toml
"$bin" check configs/demo-pipeline.toml

if [[ -t 0 && -t 1 && -z ${CI:-} ]]; then
  exec "$bin"
else
  exec "$bin" run configs/demo-pipeline.toml
fi
