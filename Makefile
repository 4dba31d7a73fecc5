# idlerace's vocabulary: make run, make test, make bench, make lint, make ci.
# Each target sets up what it needs on a fresh machine (scripts/deps.sh): build and run
# only Go modules; test, bench and ci also the Debian packages of the real upstreams,
# Chromium and Prometheus, when running as root.

GO      ?= go
BIN     := bin/idlerace
PKGS    := ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -X main.Version=$(VERSION) -X main.Commit=$(COMMIT)
BENCH_COUNT ?= 6

.PHONY: all deps deps-run deps-real deps-test build run test bench lint ci clean soak membench

all: build

## deps-run: Go modules (all the builtin upstream needs); deps-real: also nginx, uvicorn,
## node and iproute2 (examples/real-upstreams.yaml, netem); deps-test: also chromium and
## prometheus, which only tests use
deps-run:
	@bash scripts/deps.sh run
deps-real:
	@bash scripts/deps.sh real
deps-test:
	@bash scripts/deps.sh test
deps: deps-test

build: deps-run
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/idlerace

## run: the embedded default benchmark (builtin upstream, T=100ms, three skews, every strategy)
run: build
	./$(BIN) run

## test: every test, on real loopback sockets, under the race detector; one package at a
## time (-p 1), because the race tests measure timing and 2 cores are all there is
test: deps-test
	$(GO) test -race -count=1 -p 1 -timeout 15m $(PKGS)

## bench: benchmarks; compare two runs with `make benchstat OLD=a.txt NEW=b.txt`
bench: deps-test
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) $(PKGS) | tee bench.txt

## soak: 10 minutes of constant 2,000 requests/s through every strategy at once (one process
## each, builtin upstream, T=1s), sampling RSS, fds and goroutines every 10 s; fails if any
## grows more than 5% from minute 1 to minute 10. Not part of make test. Shorter:
## make soak SOAK_DURATION=2m (also SOAK_RATE, SOAK_IDLE_TIMEOUT, SOAK_SAMPLES, SOAK_MAX_GROWTH, SOAK_WORKERS)
SOAK_DURATION     ?= 10m
SOAK_RATE         ?= 2000
SOAK_IDLE_TIMEOUT ?= 1s
soak: deps-run
	SOAK_DURATION=$(SOAK_DURATION) SOAK_RATE=$(SOAK_RATE) SOAK_IDLE_TIMEOUT=$(SOAK_IDLE_TIMEOUT) \
		$(GO) test -tags soak -count=1 -run '^TestSoak' -timeout 0 -v ./matrix/

## membench: one cell of 1,000,000 constant-load requests under /usr/bin/time -v; prints
## peak RSS and requests/s, fails above 32 MiB (scripts/mem-bench.sh; MEMBENCH_* to tune)
membench: deps-run
	@bash scripts/mem-bench.sh

benchstat:
	$(GO) tool -modfile=tools/go.mod benchstat $(OLD) $(NEW)

lint: deps-run
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool -modfile=tools/go.mod staticcheck $(PKGS)

## ci: what .ci/run calls: vet, then the README's test command (race detector on)
ci: deps-test
	$(GO) vet $(PKGS)
	$(MAKE) test

clean:
	rm -rf bin bench.txt
