# porttrace — build, test, regenerate, benchmark.
# Works under sudo, whose PATH usually lacks Go: fall back to /usr/local/go.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
CLANG ?= clang-14
BIN := bin/porttrace
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X github.com/porttrace/porttrace/internal/cli.version=$(VERSION)

.PHONY: all build test-deps test test-kernel61 test-kernel510 test-kernels unit bench bench-kernel61 bench-kernel510 generate check-generated fuzz clean

all: build

# The BPF objects are committed: building needs Go only.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/porttrace

# What the tests drive, from Debian's packages (root): the programs users run
# (nginx, haproxy, sshd and ssh, dig, java, curl), containerd for the pod
# tests, Prometheus for serve's, Chromium for the HTML report's, tmux for
# top's terminal. The README's test command: sudo make test-deps test
TEST_DEPS := iproute2 util-linux python3 curl netcat-openbsd gzip strace tmux chromium \
	nginx-light haproxy openssh-server openssh-client dnsutils openjdk-17-jdk-headless \
	containerd runc containernetworking-plugins prometheus
test-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEST_DEPS) >/dev/null

# Every test: the real-kernel ones need root and skip without it, saying why.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

# The real-kernel tests again on Debian's Linux 6.1 under qemu, once per hook
# tier, in one VM (root; needs qemu-system-x86, busybox-static).
test-kernel61:
	bash .ci/kernel61-tests.sh

# The same on Debian 11's Linux 5.10, the oldest kernel porttrace supports.
test-kernel510:
	VM_KERNEL=5.10 bash .ci/kernel61-tests.sh

# Both, side by side (what CI runs): each VM on one of two cores.
test-kernels:
	bash .ci/kernels.sh

# The tiers compared on Linux 6.1 under qemu: the same loops as bench, bare
# and traced in each tier; ratios to compare within the run.
bench-kernel61:
	bash .ci/kernel61-bench.sh

# The same loops on Debian 11's Linux 5.10.
bench-kernel510:
	VM_KERNEL=5.10 bash .ci/kernel61-bench.sh

# Only the tests that need neither root nor a kernel.
unit:
	$(GO) test -count=1 -run 'Unit|Parse|Format|JSON|Text|Decode|Flag' ./...

# Overhead of tracing on fixed socket loops, bare and traced in one run;
# `porttrace serve` against tracing everything (CPU per TCP connect+close,
# BPF run time included), its idle memory and a scrape of 1,000 namespaces;
# then `porttrace report` on a 1 GiB recording (REPORT_MB to change it).
REPORT_MB ?= 1024
bench: build
	$(GO) test -count=1 -run '^$$' -bench 'TCP|UDP|Bind|Sendto|AtOnce' -benchtime 20000x -timeout 30m ./internal/bench -args -porttrace $(CURDIR)/$(BIN)
	$(GO) test -count=1 -run '^$$' -bench 'Serve' -benchtime 1x -timeout 30m ./internal/bench -args -porttrace $(CURDIR)/$(BIN)
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

# ---- Releases (README, "Install"): static binaries, the man page and
# completions, the .deb and .rpm (nfpm, pinned in go.mod), and a container
# image built without a registry; all into dist/.
# tracer/ has BPF objects for amd64 and arm64 (each with its own system
# call numbers and registers): make release RELEASE_ARCHES="amd64 arm64".
RELEASE_ARCHES ?= amd64
DIST := dist
# A package version starts with a digit and sorts: a v-tag's, or the commit's time and hash.
PKG_VERSION ?= $(shell t=$$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null) && echo $${t\#v} || git log -1 --format=0.0~git%cd.%h --date=format:%Y%m%d%H%M%S 2>/dev/null || echo 0.0~devel)
# The page's date is the commit's, so a rebuild makes the same page.
DOC_DATE ?= $(shell git log -1 --format=%cd --date=format:%Y-%m-%d 2>/dev/null || date -u +%F)

.PHONY: release docs packages image clean-dist

release:
	for a in $(RELEASE_ARCHES); do \
		o=$$a; [ $$a != amd64 ] || o=x86; \
		ls tracer/*_$${o}_bpfel.o >/dev/null 2>&1 || { echo "make release: tracer/ has no BPF objects for $$a (tracer/*_$${o}_bpfel.o): add $$a to bpf2go's -target in tracer/gen.go and run make generate"; exit 1; }; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/porttrace-linux-$$a ./cmd/porttrace || exit 1; \
	done

docs:
	$(GO) run ./internal/docgen/gendocs -o $(DIST)/share -version $(VERSION) -date $(DOC_DATE)
	gzip -9nkf $(DIST)/share/porttrace.8

packages: release docs
	for a in $(RELEASE_ARCHES); do \
		sed 's/$${ARCH}/'$$a/g deploy/nfpm.yaml >$(DIST)/nfpm-$$a.yaml || exit 1; \
		for p in deb rpm; do \
			PKG_VERSION='$(PKG_VERSION)' $(GO) tool nfpm package -f $(DIST)/nfpm-$$a.yaml -p $$p -t $(DIST)/ || exit 1; \
		done; \
	done

# FROM scratch needs nothing from a registry. Each image is also saved as a
# file to carry to hosts (podman load -i / docker load -i), named
# localhost/porttrace:latest there; here it is also tagged with its version.
image: release
	for a in $(RELEASE_ARCHES); do \
		podman build --layers=false --arch $$a --build-arg TARGETARCH=$$a -f deploy/Containerfile \
			-t localhost/porttrace:$(VERSION)-$$a -t localhost/porttrace:latest $(DIST) || exit 1; \
		rm -f $(DIST)/porttrace-image-$$a.tar; \
		podman save -o $(DIST)/porttrace-image-$$a.tar localhost/porttrace:latest || exit 1; \
	done

clean: clean-dist
clean-dist:
	rm -rf $(DIST)
