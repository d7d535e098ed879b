# Quick start: `make demo` and `make test`. Both install what they need first.
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build demo test clean

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

clean:
	rm -rf .build
