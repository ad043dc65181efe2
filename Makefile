# porttrace — build, test, regenerate, benchmark.
# Works under sudo, whose PATH usually lacks Go: fall back to /usr/local/go.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
CLANG ?= clang-14
BIN := bin/porttrace
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X github.com/porttrace/porttrace/internal/cli.version=$(VERSION)

.PHONY: all build test test-kernel61 unit bench bench-kernel61 generate check-generated fuzz clean

all: build

# The BPF objects are committed: building needs Go only.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/porttrace

# Every test: the real-kernel ones need root and skip without it, saying why.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

# Only the tests that need neither root nor a kernel.
# The real-kernel tests again on Debian's Linux 6.1 under qemu, once per hook
# tier, each in its own VM (root; needs qemu-system-x86, busybox-static).
test-kernel61:
	bash .ci/kernel61-tests.sh

# The tiers side by side on Linux 6.1 under qemu (the one kernel here that
# loads them all): same loops as bench, ratios to compare within the run.
bench-kernel61:
	bash .ci/kernel61-bench.sh

unit:
	$(GO) test -count=1 -run 'Unit|Parse|Format|JSON|Text|Decode|Flag' ./...

# Overhead of tracing on fixed socket loops, bare and traced in one run;
# then `porttrace report` on a 1 GiB recording (REPORT_MB to change it).
REPORT_MB ?= 1024
bench: build
	$(GO) test -count=1 -run '^$$' -bench 'TCP|UDP|Bind|Sendto|AtOnce' -benchtime 20000x -timeout 30m ./internal/bench -args -porttrace $(CURDIR)/$(BIN)
	$(GO) test -count=1 -run '^$$' -bench 'Report|Hold100k' -benchtime 1x -timeout 30m ./internal/bench -args -porttrace $(CURDIR)/$(BIN) -report-mb $(REPORT_MB)

# Regenerate the BPF objects and their Go bindings with the pinned clang.
generate:
	@command -v $(CLANG) >/dev/null || { echo "$(CLANG) not found: apt-get install clang-14 llvm-14"; exit 1; }
	cd tracer && $(GO) generate ./...

# CI: the committed objects must be exactly what the sources compile to.
check-generated: generate
	@git diff --exit-code --stat -- tracer/ || { echo "tracer/*_bpfel.* differ from what 'make generate' produces: run it and commit the result"; exit 1; }

clean:
	rm -rf bin
