# The project's everyday commands, the same as README.md and .ci/run run.
# `make` alone runs the tests.

# The staticcheck that CI runs, at the version .ci/run pins.
STATICCHECK := $(shell sed -n 's/^staticcheck=//p' .ci/run)

.PHONY: test lint bench run ci

# Every test. Those that need PostgreSQL, Python, nginx or Caddy say so when skipped.
test:
	go test ./...

# gofmt, go vet and staticcheck, as CI runs them.
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	go run $(STATICCHECK) ./...

# Every Go benchmark, once (docs/benchmarks.md has the measured runs).
bench:
	go test -run '^$$' -bench . -benchmem ./...

# A development server on http://127.0.0.1:8080 with a demo user and consumer.
run:
	go run ./cmd/gatehouse serve --dev

# Everything CI runs, with PostgreSQL, Python and nginx required.
ci:
	bash .ci/run
