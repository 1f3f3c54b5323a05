# edgeprobe — the two newcomer commands are `make demo` and `make test`.
GO      ?= go
PKGS    := ./...
BIN     := bin/probe

.PHONY: demo test build deps lint bench bench-accuracy fuzz clean

## demo: the whole pipeline offline (no root, no AWS), a short run.
demo:
	$(GO) run ./cmd/probe demo

## test: install the real parts the tests use, then lint and the whole suite with -race.
test: deps lint
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v /labtest$$)
	@# Alone: its 1 ms bounds on injected delays need the machine to itself.
	$(GO) test -race -count=1 -timeout 10m ./labtest

build:
	$(GO) build -o $(BIN) ./cmd/probe

deps:
	./scripts/deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## bench: the measurement core's per-probe cost (allocations, CPU).
bench:
	$(GO) test -run '^$$' -bench ProbeCost -benchtime 2s ./bench

## bench-agent: 1,000 and 5,000 targets against the blackbox exporter driven by Prometheus (~10 min).
bench-agent: deps
	$(GO) test -run '^$$' -bench Agent -benchtime 1x -timeout 30m -v ./bench

## bench-accuracy: phases against injected delays and curl -w (needs root for the resolver namespace).
bench-accuracy: deps
	$(GO) test -run '^$$' -bench Accuracy -benchtime 200x -count 1 -v ./bench

## fuzz: each header parser for a while.
fuzz:
	for f in FuzzParseServerTiming FuzzParseCacheStatus FuzzParseXCache FuzzParseCDN; do \
		$(GO) test ./httptrace -run '^$$' -fuzz "^$$f$$" -fuzztime 30s || exit 1; done

clean:
	rm -rf bin
