# salt-ort: `make test` installs what is missing and runs every test;
# `make demo` installs what is missing and runs the main job on a small
# generated dataset on the CPU.

SHELL := /bin/bash
GO ?= go
PKG := github.com/salt-ort/salt-ort

# HDF5's C flags come from pkg-config's hdf5-serial (loader/cgo.go), where
# Debian's libhdf5-dev installs its serial build off the default paths.

ORT_DIR := $(CURDIR)/third_party/onnxruntime/dist
ORT_LIB := $(ORT_DIR)/lib/libonnxruntime.so
export SALT_ORT_LIB ?= $(ORT_LIB)

PROTOC_GEN_GO := $(CURDIR)/third_party/bin/protoc-gen-go
PROTOC_GEN_GO_VERSION := v1.36.12

BIN := bin/salt-ort
LDFLAGS := -X $(PKG)/runtime.buildLibraryPath=$(ORT_LIB)
TEST_TIMEOUT ?= 80m

.PHONY: all deps deps-cuda apt ort generate build cpp vet test fuzz bench bench-deploy demo clean

all: build

## deps: Debian packages, ONNX Runtime (and the releases validate --ort
## compares by default) and the protoc plugin (idempotent)
deps: apt ort $(PROTOC_GEN_GO)

apt:
	third_party/debian/install.sh

ort:
	third_party/onnxruntime/fetch.sh
	third_party/onnxruntime/fetch-versions.sh

## deps-cuda: ONNX Runtime's CUDA provider beside libonnxruntime.so (GPU machines)
deps-cuda: ort
	third_party/onnxruntime/fetch-cuda.sh

$(PROTOC_GEN_GO):
	GOBIN=$(CURDIR)/third_party/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

## generate: regenerate the ONNX protobuf Go types
generate: deps
	$(GO) generate ./codegen/...

## build: the salt-ort binary in bin/
build: deps
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/salt-ort

## cpp: the C++ programs (CMakeLists.txt) in build/
cpp: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
	cmake --build build -j2

vet: deps
	$(GO) vet ./...

## test: everything CI runs: vet, the tests, and each fuzz target briefly
test: deps vet
	$(GO) test -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) fuzz

FUZZTIME ?= 10s
# A fuzz target that stops executing proves nothing: scripts/fuzzcheck
# fails a run whose rate, in any 3 s window after warm-up, falls below
# FUZZ_MIN_EXECS execs/s (the fuzzer's own progress lines). A target that
# fails only with Go 1.26's bare "context deadline exceeded" at the
# -fuzztime boundary, having written no failing input, runs once more
# (go.dev/issue/75804, a race in the fuzz coordinator fixed in Go 1.27).
FUZZ_MIN_EXECS ?= 500
# Minimisation of each new input, bounded by calls (internal/testkit/fuzztest says
# why); Go's default of 60 s keeps both workers from fuzzing.
FUZZ_MINIMIZE ?= 1000x
FUZZ_TARGETS := ./checkpoint:FuzzDecode ./config:FuzzParse \
	./loader:FuzzReadNormDict ./loader:FuzzReadClassDict ./loader:FuzzH5Fields ./loader:FuzzStringsAttr \
	./loader:FuzzVDSCoverage ./deploy:FuzzReadMetadata ./deploy:FuzzOpenModel \
	./saltimport:FuzzReadCheckpoint ./saltimport:FuzzConvert

## fuzz: run every fuzz target for FUZZTIME and check that it kept
## executing; print each target's execs/s (seed corpora are in testdata/fuzz)
fuzz: deps
	@logs=$$(mktemp -d); trap 'rm -rf "$$logs"' EXIT; fail=0; \
	for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
	  for try in 1 2; do \
	    $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZ_MINIMIZE) $$pkg 2>&1 | tee "$$logs/$$name.log"; \
	    [ $${PIPESTATUS[0]} -eq 0 ] && break; \
	    if [ $$try -eq 1 ] && scripts/fuzzcheck -coordinator-race "$$logs/$$name.log"; then \
	      echo "fuzz $$t: Go 1.26's coordinator failed at the -fuzztime deadline with no failing input (go.dev/issue/75804, fixed in Go 1.27); running it again"; \
	      continue; \
	    fi; \
	    exit 1; \
	  done; \
	  scripts/fuzzcheck -min $(FUZZ_MIN_EXECS) -name "$$t" -fuzztime $(FUZZTIME) "$$logs/$$name.log" >> "$$logs/summary" || fail=1; \
	done; \
	echo "fuzz: execs/s per target (FUZZTIME $(FUZZTIME); at least $(FUZZ_MIN_EXECS)/s after warm-up):"; \
	cat "$$logs/summary"; \
	exit $$fail

## bench: the performance benchmarks (figures printed, nothing asserted)
bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

## bench-deploy: GN2's one-jet deployment latency, salt-ort's export beside
## a Salt-shaped GN2 that PyTorch exports as Salt's exporter does, from Go and
## from the generated C++ (deploy.BenchmarkDeployVsSalt; about a minute)
bench-deploy: deps
	$(GO) test -run '^$$' -bench '^BenchmarkDeployVsSalt$$' -benchtime 1x -timeout 30m ./deploy

DEMO_DATA := data/demo
DEMO_RUN := runs/demo

## demo: the main job on an embedded default, on the CPU: generate a small
## dataset, train examples/gn2-small.toml on it, evaluate it on the test
## file and export it for C++; print where the results are
demo: build
	@test -f $(DEMO_DATA)/train.h5 || ./$(BIN) gen-data --out $(DEMO_DATA) --train 30000 --val 5000 --test 10000
	rm -rf $(DEMO_RUN)
	./$(BIN) train examples/gn2-small.toml --out $(DEMO_RUN)
	./$(BIN) eval $(DEMO_RUN)
	./$(BIN) export $(DEMO_RUN) -o $(DEMO_RUN)/export/GN2.onnx
	./$(BIN) validate $(DEMO_RUN)/export/GN2.onnx --cpp

clean:
	rm -rf bin third_party/bin third_party/onnxruntime/dist third_party/onnxruntime/versions
