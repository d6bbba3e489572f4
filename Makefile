# scintigan: `make demo` and `make test` on a fresh machine with Rust and Python 3.
#
# libtorch comes from the PyPI wheel torch==2.13.0 in a project-local
# virtualenv (.venv), unless LIBTORCH points at an existing libtorch 2.13.0:
#   make LIBTORCH=/opt/libtorch test
# The built binary finds libtorch through an embedded rpath: no
# LD_LIBRARY_PATH needed.

SHELL := /bin/bash
VENV := .venv
BIN := target/release/scintigan

ifdef LIBTORCH
  TORCH_ENV := LIBTORCH=$(LIBTORCH)
  TORCH_STAMP := .libtorch-external
else
  TORCH_ENV := LIBTORCH_USE_PYTORCH=1 VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
  TORCH_STAMP := $(VENV)/.torch-2.13.0
endif
CARGO := $(TORCH_ENV) cargo

.PHONY: all build test lint demo study bench libtorch clean .libtorch-external
all: build

# The stamp is made once torch 2.13.0 is verified in the venv.
$(VENV)/.torch-2.13.0:
	@scripts/setup-libtorch.sh $(VENV)
	@touch $@

.libtorch-external:
	@scripts/setup-libtorch.sh $(VENV)

libtorch: $(TORCH_STAMP)

build: libtorch
	$(CARGO) build --release

# Reference outputs of torchvision's backbones for the equivalence tests:
# torchvision 0.28.0 (the release for torch 2.13.0) and safetensors from PyPI
# in the project virtualenv (made even when LIBTORCH is set: the reference
# needs Python torch).
REFERENCE := target/torchvision-reference/.done

$(VENV)/.reference-deps:
	@env -u LIBTORCH scripts/setup-libtorch.sh $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check torchvision==0.28.0 safetensors || \
	  { echo "error: pip could not install torchvision==0.28.0 and safetensors into $(VENV); check that PyPI is reachable" >&2; exit 1; }
	@touch $@

$(REFERENCE): $(VENV)/.reference-deps scripts/torchvision_reference.py
	$(VENV)/bin/python -W ignore scripts/torchvision_reference.py target/torchvision-reference
	@touch $@

# Independent DICOM writers for the reader's tests: dcmtk and OpenJPEG's
# tools from Debian, pydicom from PyPI into the venv.
DICOM_TOOLS := $(VENV)/.dicom-tools

$(DICOM_TOOLS): $(VENV)/.reference-deps scripts/setup-dicom-tools.sh
	@scripts/setup-dicom-tools.sh $(VENV)
	@touch $@

# The whole suite: unit tests, integration tests (they run the built binary),
# then 30 s of each fuzz target and its regression inputs (a cold fuzz build
# takes about 11 min on 2 cores, a warm one seconds).
test: build $(REFERENCE) $(DICOM_TOOLS)
	@scripts/setup-slurm.sh
	$(CARGO) test --release -- --test-threads=2
	@$(TORCH_ENV) scripts/fuzz-smoke.sh

# A short fuzz run (fuzz/: cargo-fuzz on stable, --sanitizer none): 30 s
# per target, then every input saved in fuzz/regressions/ once (see
# scripts/fuzz-smoke.sh; FUZZ_SECONDS sets the time per target).
.PHONY: fuzz-smoke
fuzz-smoke: libtorch
	@$(TORCH_ENV) scripts/fuzz-smoke.sh

lint: libtorch
	cargo fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings

# The paper's pipeline on phantom data sets written to data/demo/
# (chest X-rays in the COVID-19 layout, bone scans as DICOM, ingested),
# configs/demo-pipeline.toml, then on a terminal the dashboard (it starts
# the daemon, which queues the pipeline; q detaches, the run goes on);
# without one (CI, pipes) the pipeline in the foreground. DEMO_DIR picks
# another project folder, DEMO_SCALE=smoke tiny sizes (see scripts/demo.sh).
demo: build
	@scripts/demo.sh

# Tables 3 and 4 on phantoms, 3 seeds, under 2 hours on 2 CPU cores: the
# report in study/runs/experiments/table4/<tag>/ (STUDY_DIR picks another folder,
# STUDY_SEEDS fewer seeds; see scripts/study.sh).
study: build
	@scripts/study.sh

# Parameters and forward+backward time per model at 256x128 (see README).
bench: libtorch
	$(CARGO) bench --bench model_timing
	$(CARGO) bench --bench daemon_throughput
	$(CARGO) bench --bench tui
	$(CARGO) bench --bench data_pipeline

clean:
	cargo clean
