# converge: set-up, demo, tests and benchmarks. One cargo profile (release)
# for everything, so a cold machine compiles the dependencies once.

VENV      := $(CURDIR)/.venv
PYTHON    ?= python3
TORCH     := torch==2.13.0
TARGET    := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
BIN       := $(TARGET)/release/converge

# tch builds against the venv's PyTorch (libtorch from PyPI).
export LIBTORCH_USE_PYTORCH := 1
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)

.PHONY: setup venv build demo test bench lint fmt

setup: build

venv: $(VENV)/.torch-ready

$(VENV)/.torch-ready:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(TORCH)
	$(VENV)/bin/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

# --all-targets: the dev-dependencies then unify crate features exactly as
# `cargo test --release` does, so tests and demo share one build of the
# dependencies (plain `cargo build` would compile polars a second time).
build: venv
	cargo build --release --all-targets

# Plan, train and rank the quick study: RNN, Transformer and diffusion
# (a few minutes each on 2 CPU cores).
demo: setup
	$(BIN) plan experiments/quick
	$(BIN) run experiments/quick
	$(BIN) report experiments/quick

test: venv
	cargo test --release

# Training steps/s of converge against the PyTorch reference (bench/), CPU,
# same model, batch and threads; writes BENCHMARKS.md.
bench: setup
	$(VENV)/bin/python bench/run.py --out BENCHMARKS.md

lint: venv
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings

fmt:
	cargo fmt
