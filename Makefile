# Gregor: a Kafka-wire-compatible streaming log. `make test` is what CI runs.

GO        ?= go
PKGS      := ./...
# Benchmarks: how long each runs and how many times (benchstat wants >= 6 for
# confidence intervals).
BENCHTIME ?= 500ms
BENCHCOUNT ?= 6
# Fuzzing: how long each target runs in `make fuzz`.
FUZZTIME  ?= 1m
RESULTS   := results/$(shell date -u +%Y-%m-%d)-storage
BROKER_RESULTS := results/$(shell date -u +%Y-%m-%d)-broker
BENCHSTAT := $(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

.PHONY: all build test vet fmt-check bench bench-micro bench-storage bench-broker fuzz run clean

all: build

# Compiles every package and the gregor binary into bin/.
build:
	$(GO) build $(PKGS)
	$(GO) build -o bin/gregor ./cmd/gregor

# Starts the default development node: one combined broker+controller,
# clients on 127.0.0.1:9092, data in ./data. Ctrl-C stops it cleanly.
run: build
	./bin/gregor serve

# Everything CI checks: formatting, vet, every test (fuzz seed corpora
# included) under the race detector, and the allocation tests again without
# it, since the race detector makes some stack buffers escape.
test: fmt-check vet
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	$(GO) test -count=1 -run 'Alloc' $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needs to run on:"; echo "$$out"; exit 1; fi

# The main job: `gregor bench` runs workloads/default.yaml (acks x linger.ms x
# compression, 27 scenarios, about 3 minutes on 2 cores) on an embedded
# cluster and writes results/<date>-default/ (summary.json, .hgrm files,
# report.md, plots).
bench:
	$(GO) run ./cmd/gregor bench --workload workloads/default.yaml

# The micro-benchmarks behind the README's other figures: storage, quorum and
# network, the controller failover time, and the broker through a gregor
# process beside the machine's limits (loopback TCP, page-cache appends),
# with benchstat tables under results/
bench-micro: bench-storage bench-broker

bench-storage:
	@mkdir -p $(RESULTS)
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) -count=$(BENCHCOUNT) ./batch ./segment ./raft ./netio | tee $(RESULTS)/bench.txt
	$(GO) test -count=1 -run '^TestFailoverTime$$' -v ./raft | grep 'failover over' | sed 's/^ *node_test.go:[0-9]*: //' | tee $(RESULTS)/failover.txt
	@: > $(RESULTS)/benchstat.txt
	@for b in Validate Compress Decompress Builder Append OffsetLookup RecoveryScan ApplyPartitionChange EntryCodec FetchResponse; do \
		col=/impl; case $$b in Compress|Decompress|Builder) col=/codec;; EntryCodec) col=/op;; esac; \
		$(BENCHSTAT) -filter ".name:/^$$b/" -col $$col $(RESULTS)/bench.txt | tee -a $(RESULTS)/benchstat.txt; \
	done

# The broker part of bench-micro alone: limits, BenchmarkBroker, engines.
bench-broker:
	@mkdir -p $(BROKER_RESULTS)
	$(GO) test -run='^$$' -bench='^BenchmarkLimits$$' -benchtime=1000x -count=$(BENCHCOUNT) ./cmd/gregor | tee $(BROKER_RESULTS)/bench.txt
	$(GO) test -run='^$$' -bench='^BenchmarkBroker$$' -benchtime=300000x -count=$(BENCHCOUNT) ./cmd/gregor | tee -a $(BROKER_RESULTS)/bench.txt
	$(BENCHSTAT) $(BROKER_RESULTS)/bench.txt | tee $(BROKER_RESULTS)/benchstat.txt
	@# Each engine in a process of its own, the order alternating by round:
	@# how fast the kernel hands out page-cache pages depends on what earlier
	@# runs freed, and would otherwise favour whichever engine runs first.
	@: > $(BROKER_RESULTS)/engines.txt
	@for i in $$(seq $(BENCHCOUNT)); do \
		if [ $$((i % 2)) = 1 ]; then order="std netpoll"; else order="netpoll std"; fi; \
		for e in $$order; do \
			$(GO) test -run='^$$' -bench="^BenchmarkEngines\$$/^engine=$$e\$$/^op=(produce|fetch|fetch-raw)\$$" -benchtime=300000x -count=1 ./cmd/gregor | tee -a $(BROKER_RESULTS)/engines.txt; \
		done; \
	done
	$(GO) test -run='^$$' -bench='^BenchmarkEngines$$//^op=(idle-connections|flood-oversized|flood-pipelined|flood-pipelined-conns)$$' -benchtime=1x -count=$(BENCHCOUNT) ./cmd/gregor | tee -a $(BROKER_RESULTS)/engines.txt
	$(BENCHSTAT) -col /engine $(BROKER_RESULTS)/engines.txt | tee $(BROKER_RESULTS)/engines-benchstat.txt

# Longer fuzzing than the seed corpora `make test` runs: every target in turn.
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf bin
