# The one command surface of eventflow: run, test, bench, lint, proto, fmt.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_OUT := clients/python
PROTOS := $(wildcard proto/eventflow/v1/*.proto)
GEN_STAMP := $(PROTO_OUT)/eventflow/.generated
export PYTHONPATH := $(CURDIR):$(CURDIR)/clients/python

.PHONY: run test test-reliability soak account keys revoke bench lint fmt proto worker gateway server clean install

$(STAMP): pyproject.toml server/native/valuecodec.c
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "==> installing dependencies into $(VENV) (first run takes a minute)"
	@$(BIN)/python -m pip install -q --upgrade pip > $(VENV)/pip.log 2>&1 || (cat $(VENV)/pip.log; exit 1)
	@$(BIN)/python -m pip install -e '.[dev]' >> $(VENV)/pip.log 2>&1 || (cat $(VENV)/pip.log; exit 1)
	@touch $@

install: $(STAMP)

$(GEN_STAMP): $(PROTOS) $(STAMP)
	@echo "==> generating gRPC stubs from proto/"
	@mkdir -p $(PROTO_OUT)
	@$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) \
		--grpc_python_out=$(PROTO_OUT) $(PROTOS)
	@touch $(PROTO_OUT)/eventflow/__init__.py $(PROTO_OUT)/eventflow/v1/__init__.py
	@touch $@

proto: $(GEN_STAMP)

run: proto
	@$(BIN)/python -m server.devrun

server: proto
	@$(BIN)/python -m server

gateway: proto
	@$(BIN)/python -m server.gateway

worker: proto
	@$(BIN)/python -m workers

test: proto
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

# Accounts and keys on the deployment the environment names (README, Accounts and keys):
#   make account NAME=shop [EMAIL=owner@shop.example]
#   make keys ACCOUNT=2 [ADD=label]
#   make revoke KEY=5
account: proto
	@$(BIN)/python -m server.accounts create "$(NAME)" $(if $(EMAIL),--email "$(EMAIL)")

keys: proto
	@$(BIN)/python -m server.accounts keys "$(ACCOUNT)" $(if $(ADD),--add "$(ADD)")

revoke: proto
	@$(BIN)/python -m server.accounts revoke "$(KEY)"

# The hostile-input, isolation, outage and memory scenarios alone (docs/reliability.md);
# `make test` runs them too.
test-reliability: proto
	@$(BIN)/python -m pytest tests/reliability $(PYTEST_ARGS)

# The memory soak of docs/reliability.md for 10 minutes (the suite runs 75 s of it); the
# RSS of every process is printed and written to var/soak.json.
soak: proto
	@mkdir -p var
	@SOAK_SECONDS=$${SOAK_SECONDS:-600} SOAK_REPORT=$(CURDIR)/var/soak.json \
		$(BIN)/python -m pytest tests/reliability/test_soak.py -s -q $(PYTEST_ARGS)

bench: proto
	@$(BIN)/python -m bench

lint: proto
	@$(BIN)/ruff check server workers clients/python/eventflow_client tests bench
	@$(BIN)/mypy server workers clients/python/eventflow_client

fmt: $(STAMP)
	@$(BIN)/ruff format server workers clients/python/eventflow_client tests bench

clean:
	rm -rf $(PROTO_OUT)/eventflow .pytest_cache
