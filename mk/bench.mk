# The benchmark (bench/): llm-gateway against a bare pass-through, the LiteLLM proxy and the
# Portkey gateway, all in front of one fake upstream on loopback. Not a test: `make test` does
# not run it (tests/bench only checks that the harness still works).
#
#   make bench                   full run (about 5-8 minutes on 2 cores)
#   make bench BENCH_QUICK=1     short smoke run
#   make bench-profile           py-spy profile of the gateway under load
#
# The peers are installed from lock files into bench/ only: the LiteLLM proxy into its own venv
# (exact pin, hashes required), Portkey with `npm ci` from the committed package-lock.json
# (install scripts off).

BENCH_PYTHON ?= python$(PYTHON_VERSION)
BENCH_LITELLM_VENV := bench/.venv-litellm
BENCH_LITELLM_STAMP := $(BENCH_LITELLM_VENV)/.requirements-installed
BENCH_PROFILE_VENV := bench/.venv-profile
BENCH_PROFILE_STAMP := $(BENCH_PROFILE_VENV)/.requirements-installed
BENCH_PORTKEY_STAMP := bench/node_modules/.package-lock-installed

.PHONY: bench bench-peers bench-profile bench-clean

bench: install-dev bench-peers ## Benchmark vs a bare pass-through, LiteLLM proxy, Portkey (bench/results/latest.md).
	$(PY) -m bench.run

bench-peers: $(BENCH_LITELLM_STAMP) $(BENCH_PORTKEY_STAMP) ## Install the benchmark's peers from their lock files.

bench-profile: install-dev $(BENCH_PROFILE_STAMP) ## Profile the gateway under load with py-spy (bench/results/profile-*.md).
	$(PY) -m bench.profiling

$(BENCH_LITELLM_STAMP): bench/requirements-litellm-proxy.txt
	rm -rf $(BENCH_LITELLM_VENV)
	$(BENCH_PYTHON) -m venv $(BENCH_LITELLM_VENV)
	$(BENCH_LITELLM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		--require-hashes --no-deps -r $<
	touch $@

$(BENCH_PROFILE_STAMP): bench/requirements-profile.txt
	rm -rf $(BENCH_PROFILE_VENV)
	$(BENCH_PYTHON) -m venv $(BENCH_PROFILE_VENV)
	$(BENCH_PROFILE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		--require-hashes --no-deps -r $<
	touch $@

$(BENCH_PORTKEY_STAMP): bench/package.json bench/package-lock.json
	cd bench && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

bench-clean: ## Remove the benchmark's peer installs and run logs.
	rm -rf $(BENCH_LITELLM_VENV) $(BENCH_PROFILE_VENV) bench/node_modules bench/results/*.log
