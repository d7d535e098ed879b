# Quick start: `make demo` and `make test`. Both install what they need first.
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build demo test bench-micro clean

# liblz4-dev (and pkg-config, which finds it) come from Debian's packages when missing.
deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists liblz4; then \
		echo "installing liblz4-dev and pkg-config with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq liblz4-dev pkg-config lz4; \
	fi

build: deps
	$(SWIFT) build

demo: deps
	$(SWIFT) build -c release --product codec-demo
	$(SWIFT) run -c release --skip-build codec-demo

test: deps
	$(SWIFT) test

# The package-benchmark micro-benchmarks: their own package (Benchmarks/Package.swift), so an
# embedding broker never builds package-benchmark. Release build; see Docs/Performance.md.
bench-micro: deps
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark

clean:
	rm -rf .build
