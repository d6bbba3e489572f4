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

.PHONY: all build test lint demo libtorch clean .libtorch-external
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

# The whole suite: unit tests, integration tests (they run the built binary).
test: build
	$(CARGO) test --release -- --test-threads=2

lint: libtorch
	cargo fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings

# Until the dashboard lands: the three-stage pipeline on synthetic phantoms,
# headless, in runs/.
demo: build
	$(BIN) check configs/examples/demo-pipeline.toml
	$(BIN) run configs/examples/demo-pipeline.toml

clean:
	cargo clean
