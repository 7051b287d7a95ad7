# Silt's build, test and benchmark entry points. `make test` is what CI runs
# (through .ci/run); it needs Go and the Postgres server binaries (Debian
# package `postgresql`); MinIO is built into .bin/ at the pinned version.

GO ?= go
# Keep in step with internal/testenv.MinIOVersion.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
FUZZTIME ?= 15s

.PHONY: all build test vet fuzz bench kgo-compat kafka-go-compat torture torture-short clean

all: vet build test

.bin/minio:
	GOBIN=$(CURDIR)/.bin $(GO) install github.com/minio/minio@$(MINIO_VERSION)

build:
	$(GO) build -o .bin/silt ./cmd/silt

test: .bin/minio
	SILT_TEST_REQUIRE_SERVICES=1 $(GO) test -race -timeout 45m ./...

vet:
	$(GO) vet ./...
	@out="$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Every Fuzz* target in the tree, FUZZTIME each (go test -fuzz takes one
# target of one package at a time).
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		pkg=$$(dirname $$f); \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

bench: .bin/minio
	$(GO) run ./cmd/silt-bench
	SILT_TEST_PG_DURABLE=1 $(GO) test -run '^$$' -bench . -benchtime 2s ./metastore/... ./segment/... ./auth/...

clean:
	rm -rf .bin/silt silt-data

# franz-go's own integration tests (TestGroupETL, TestTxnEtl) against a
# fresh 3-agent cluster on Postgres + MinIO, 10 runs on a steady cluster and
# 10 while an agent is stopped and another started during each run.
kgo-compat: .bin/minio
	$(GO) test -c -o .bin/kgo.test github.com/twmb/franz-go/pkg/kgo
	$(GO) run ./cmd/silt-bench --agents 3 --kgo-test .bin/kgo.test --kgo-runs 10
	$(GO) run ./cmd/silt-bench --agents 3 --kgo-test .bin/kgo.test --kgo-runs 10 --kgo-churn

# kafka-go's own test suite against `silt dev` on localhost:9092 (which
# must be free), each top-level test on its own; see .ci/kafka-go-suite.
kafka-go-compat:
	.ci/kafka-go-suite

# The randomized fault test (internal/torture): a mixed workload through a
# cluster of agents while agents, Postgres and MinIO are killed, paused,
# added, removed and cut off; then every invariant is checked. `make test`
# runs its short form (75 s of faults).
# SILT_TORTURE_SEED=<n> reuses a run's random draws; SILT_TORTURE_DURATION is
# how long faults are injected.
SILT_TORTURE_DURATION ?= 10m
torture: .bin/minio
	SILT_TEST_REQUIRE_SERVICES=1 SILT_TORTURE_DURATION=$(SILT_TORTURE_DURATION) \
		$(GO) test -run '^TestTorture$$' -count 1 -timeout 45m -v ./internal/torture/

# The short form: 75 s of faults.
torture-short: .bin/minio
	SILT_TEST_REQUIRE_SERVICES=1 SILT_TORTURE_DURATION=75s $(GO) test -run '^TestTorture$$' -count 1 -timeout 25m -v ./internal/torture/
