# Targets shared by CI (.ci/run) and humans.
GO       ?= go
# An execution count, not a duration: Go 1.26's fuzz coordinator can fail a
# clean run with "context deadline exceeded" when a duration ends
# (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 100000x
PKGS     := ./...

.PHONY: all build test race fuzz bench lint tools cross

all: lint test

build:
	$(GO) build -o weft ./cmd/weft

test:
	$(GO) test ./...

# The concurrent packages under the race detector.
race:
	$(GO) test -race ./node/... ./storage/... ./api/... ./internal/bench/...

# Every fuzz target for FUZZTIME each (go test -fuzz takes one target at a time).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; \
	    $(GO) test $$pkg -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME); \
	  done; \
	done

bench:
	$(GO) test ./... -run='^$$' -bench=. -benchmem

# The binary builds for the other systems it supports: windows and darwin
# cover every build-tagged file (darwin shares the BSD terminal code).
cross:
	GOOS=windows $(GO) vet ./cmd/weft
	GOOS=darwin $(GO) vet ./cmd/weft

tools:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet ./...
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$$($(GO) env GOPATH)/bin/staticcheck ./... 
