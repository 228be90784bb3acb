# baton: the two commands that matter are `make demo` and `make test`.
# Each installs what it needs on a bare machine (tests/tooling/prereqs.sh).

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/baton-target
# rustup's cargo, where tests/tooling/prereqs.sh put it.
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: demo test bench package fuzz lint fmt clean

## make demo: the main job on an embedded default (DynamoDB Local, sample events)
demo:
	@bash tests/tooling/demo.sh

## make test: every test (Rust, fault injection, property tests, infra checks)
test:
	@bash tests/tooling/run-tests.sh

## make bench: request counts, latency, contention, cold start and footprint
bench:
	@bash tests/tooling/bench.sh

## make package: Lambda zips for the worker and the router (arm64, else x86_64)
package:
	@bash tests/tooling/package.sh

## make fuzz: the cargo-fuzz targets for a bounded time each
fuzz:
	@bash tests/tooling/fuzz.sh

## make lint: formatting and clippy with warnings as errors (CI runs it first)
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

clean:
	bash tests/tooling/dynamodb-local.sh stop; bash tests/tooling/sqs-local.sh stop; rm -rf .run
