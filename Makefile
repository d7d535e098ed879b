# Quick start: `make demo` and `make test`. Both install what they need first.
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build demo test bench-micro bench-catch-up fuzz fuzz-build fuzz-seeds clean

# liblz4-dev (and pkg-config, which finds it) come from Debian's packages when missing, and so
# does etcd-server, the etcd that BrokerReplicationEtcdTests start.
deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists liblz4; then \
		echo "installing liblz4-dev and pkg-config with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq liblz4-dev pkg-config lz4; \
	fi
	@if ! command -v etcd >/dev/null 2>&1; then \
		echo "installing etcd-server (BrokerReplicationEtcdTests run a real etcd) with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq etcd-server; \
	fi

build: deps
	$(SWIFT) build

# The leader-saturation benchmark's short profile (about 30 s of scenarios after the build):
# the leader runs in the benchmark, its followers are replication-node processes from the same
# build directory. The codec's own rates come from make bench-micro.
DEMO_OUT := .build/leader-saturation
demo: deps
	$(SWIFT) build -c release --product replication-node
	$(SWIFT) build -c release --product leader-saturation
	@mkdir -p $(DEMO_OUT)
	$$($(SWIFT) build -c release --show-bin-path)/leader-saturation \
		--scenarios healthy-2,blackhole-1-of-2,min-isr-2-of-2-slow --duration 8 \
		--json $(DEMO_OUT)/results.json --chart $(DEMO_OUT)/throughput.svg

# The build's output is flushed before the tests start: the followers' group commit is one
# syncfs of the file system, which would otherwise pay for the build's dirty pages.
test: deps
	$(SWIFT) build --build-tests
	sync
	$(SWIFT) test --skip-build

# The package-benchmark micro-benchmarks: their own package (Benchmarks/Package.swift), so an
# embedding broker never builds package-benchmark. Release build; see Docs/Performance.md.
bench-micro: deps
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark

# Full sync of a fresh follower against rsync -a --fsync from an rsync daemon, and a returning
# follower's catch-up after leader restarts (Docs/Performance.md, "Catch-up"). About 2 GiB of
# temporary files; a few minutes.
bench-catch-up: deps
	@command -v rsync >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq rsync; }
	$(SWIFT) build -c release --product catch-up
	$$($(SWIFT) build -c release --show-bin-path)/catch-up --json .build/catch-up.json

# libFuzzer targets, one per entry point a peer's bytes reach: their own package (Tests/Fuzz),
# built with the sanitizers into .build-fuzz, each run for FUZZ_SECONDS (Docs/Operations.md,
# "Security: fuzzing"). make test runs their checks over the committed corpus, unsanitized.
FUZZ_SECONDS ?= 60
# release: the figures in Docs/Operations.md; FUZZ_CONFIG=debug builds faster and runs slower.
FUZZ_CONFIG ?= release
fuzz-build: deps
	$(SWIFT) build -c $(FUZZ_CONFIG) --package-path Tests/Fuzz --scratch-path .build-fuzz \
		-Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_CONFIG=$(FUZZ_CONFIG) Tests/Fuzz/fuzz.sh

# Rewrites the seed corpus from the real encoders (FuzzSeeds), after a change to the protocol.
fuzz-seeds: deps
	BRPL_WRITE_FUZZ_SEEDS=1 $(SWIFT) test --filter FuzzCorpusTests

clean:
	rm -rf .build .build-fuzz
