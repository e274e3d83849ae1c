# Everyday commands for sideload. `make help` lists them.
# Cargo honours CARGO_TARGET_DIR; PORT is the local broker's port for run and demo.

SHELL := /bin/bash
CARGO ?= cargo
CONFIG_DIR ?= conf
PORT ?= 1883

.PHONY: help setup build run test lint unit e2e shellcheck demo check-config bench \
	release-musl release-aarch64 release-armv7 test-programs broker broker-stop clean \
	engine engine-stop runner-image

help:
	@echo "make build            release build (cargo build --release)"
	@echo "make run              install the broker if needed, start it on 127.0.0.1:\$$PORT, run the runtime with conf/"
	@echo "make test             what CI runs: packages, container engine and runner image (built while Rust"
	@echo "                      compiles), fmt, clippy, shellcheck, unit and integration tests, end-to-end tests"
	@echo "make unit             Rust unit and integration tests only (cargo nextest run)"
	@echo "make e2e              end-to-end tests only (python_* are skipped when no engine runs)"
	@echo "make lint             cargo fmt --check, clippy -D warnings, shellcheck"
	@echo "make setup            install what the tests need (mosquitto, clients, jq) with apt-get"
	@echo "make engine           install docker.io if needed, start dockerd, build the offline runner image if missing"
	@echo "make engine-stop      stop the dockerd that make engine started"
	@echo "make runner-image     rebuild the offline Python runner image (containers/build-offline-image.sh --force)"
	@echo "make demo             the whole loop in one command: broker, runtime, a module's output, shutdown"
	@echo "make check-config     load and validate the settings in \$$CONFIG_DIR (default conf) without connecting"
	@echo "make bench            size, memory, latency and throughput numbers (BENCH_COLD=1 adds a cold build)"
	@echo "make release-musl     static x86_64 binary (x86_64-unknown-linux-musl)"
	@echo "make release-aarch64  static 64-bit ARM binary (aarch64-unknown-linux-musl)"
	@echo "make release-armv7    static 32-bit ARMv7 binary (armv7-unknown-linux-gnueabihf, +crt-static)"
	@echo "make test-programs    rebuild tests/programs/*.wasm from their C sources"
	@echo "make broker           start a local mosquitto on 127.0.0.1:\$$PORT (left running)"
	@echo "make broker-stop      stop the broker that run, demo or broker started"
	@echo "make clean            remove build outputs"

setup:
	scripts/setup.sh

build:
	$(CARGO) build --release

run: setup
	PORT=$(PORT) scripts/broker.sh start
	SIDELOAD__MQTT__PORT=$(PORT) $(CARGO) run --release -- --config-dir $(CONFIG_DIR)

# The runner image (debootstrap, about a minute) builds in the background while clippy
# compiles; wait-image joins it before the tests that need it.
test:
	scripts/setup.sh --with-shellcheck
	scripts/setup.sh --only podman catatonit
	scripts/engine.sh start --background-image
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(MAKE) --no-print-directory shellcheck
	scripts/engine.sh wait-image
	SIDELOAD_REQUIRE_PODMAN=1 $(MAKE) --no-print-directory unit
	SIDELOAD_REQUIRE_ENGINE=1 $(MAKE) --no-print-directory e2e

unit:
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		echo "$(CARGO) nextest run"; $(CARGO) nextest run; \
	else \
		echo "cargo-nextest is missing; using cargo test"; $(CARGO) test; \
	fi

e2e:
	tests/e2e/run-all.sh

shellcheck:
	shellcheck -x scripts/*.sh tests/e2e/*.sh .ci/run containers/*.sh containers/python-runner/entrypoint.sh

engine:
	scripts/engine.sh start

engine-stop:
	scripts/engine.sh stop

runner-image:
	containers/build-offline-image.sh --force

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(MAKE) --no-print-directory shellcheck

demo:
	scripts/demo.sh

check-config:
	$(CARGO) run --release -- --config-dir $(CONFIG_DIR) --check-config

bench:
	scripts/bench.sh $(if $(filter 1,$(BENCH_COLD)),--cold-build,)

release-musl:
	scripts/cross-build.sh musl

release-aarch64:
	scripts/cross-build.sh aarch64

release-armv7:
	scripts/cross-build.sh armv7

test-programs:
	scripts/build-test-programs.sh

broker:
	PORT=$(PORT) scripts/broker.sh start

broker-stop:
	PORT=$(PORT) scripts/broker.sh stop

clean:
	$(CARGO) clean
