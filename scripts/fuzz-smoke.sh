#!/usr/bin/env bash
# A short run of each fuzz target in fuzz/ (cargo-fuzz, libFuzzer), then
# every saved regression input once; what `make fuzz-smoke` runs.
#
#   scripts/fuzz-smoke.sh                 # 30 s per target
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh config dicom
#
# Builds with the Makefile's libtorch environment (LIBTORCH when set, else
# the PyPI torch in .venv), on stable Rust with `--sanitizer none`, into
# fuzz/target. Installs cargo-fuzz (`cargo install cargo-fuzz --locked`)
# when missing; when that fails, outside CI it says so and exits 0, under
# CI=true it fails. A target that does not build, a crash, a timeout or an
# input over the memory limit fails it. New corpus entries go to a
# temporary folder (fuzz/corpus/ keeps the seeds only); crash inputs to
# fuzz/artifacts/<target>/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
die() { echo "fuzz-smoke: error: $*" >&2; exit 1; }

seconds=${FUZZ_SECONDS:-30}
targets=("$@")
((${#targets[@]})) || targets=(config dicom protocol events)

# The Makefile's TORCH_ENV.
if [[ -z ${LIBTORCH:-} ]]; then
  export LIBTORCH_USE_PYTORCH=1 VIRTUAL_ENV=$root/.venv PATH="$root/.venv/bin:$PATH"
  [[ -x $root/.venv/bin/python ]] || die "no .venv with torch; run 'make libtorch' first (or set LIBTORCH)"
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: cargo-fuzz is missing; cargo install cargo-fuzz --locked" >&2
  if ! cargo install cargo-fuzz --locked; then
    if [[ "${CI:-}" == true ]]; then
      die "cargo-fuzz could not be installed, and CI=true needs the fuzz smoke run"
    fi
    echo "fuzz-smoke: cargo-fuzz could not be installed; the fuzz smoke run is skipped" >&2
    exit 0
  fi
fi

# Each target's own limits: a DICOM file may not make the reader use more
# than 1.5 GB (see MAX_* in src/data/dicom.rs).
rss_limit() { [[ $1 == dicom ]] && echo 1536 || echo 2048; }

start=$SECONDS
cargo fuzz build --sanitizer none || die "the fuzz targets do not build (cargo fuzz build --sanitizer none)"
echo "fuzz-smoke: built in $((SECONDS - start)) s"

work=$(mktemp -d "${TMPDIR:-/tmp}/scintigan-fuzz-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
  [[ -d fuzz/corpus/$t ]] || die "unknown target '$t' (no fuzz/corpus/$t)"
  mkdir -p "$work/$t"
  log=$work/$t.log
  # TMPDIR: the targets' scratch folders go with $work.
  if ! TMPDIR=$work cargo fuzz run --sanitizer none "$t" "$work/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -timeout=30 -rss_limit_mb="$(rss_limit "$t")" \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    die "$t: the fuzzer found a failing input (above; saved under fuzz/artifacts/$t/)"
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  echo "fuzz-smoke: $t: ${seconds} s, ${runs:-?} executions (${rate:-?}/s), 0 crashes"
  shopt -s nullglob
  inputs=(fuzz/regressions/"$t"/*)
  shopt -u nullglob
  if ((${#inputs[@]})); then
    if ! TMPDIR=$work cargo fuzz run --sanitizer none "$t" "${inputs[@]}" -- \
        -timeout=30 -rss_limit_mb="$(rss_limit "$t")" >"$log" 2>&1; then
      tail -n 60 "$log" >&2
      die "$t: a regression input in fuzz/regressions/$t/ fails again (above)"
    fi
    echo "fuzz-smoke: $t: ${#inputs[@]} regression input(s) pass"
  fi
done
echo "fuzz-smoke: all ${#targets[@]} target(s) passed in $((SECONDS - start)) s"
