# Static checks for the deployment files, which cannot run here (no Docker engine, no cluster).
#
#   make -f mk/deploy.mk deploy-check     (or `make deploy-check` once the top Makefile includes this)
#
# The checkers live in their own venv (.venv-deploy-lint), installed from a hash-locked
# requirements file, because checkov's pins clash with the gateway's dependencies in uv.lock.
# Every checker runs offline: hadolint is a static binary, check-jsonschema and
# kubernetes-validate bundle their schemas, and checkov is told not to download (deploy/checkov.yaml).

DEPLOY_PYTHON ?= python$(or $(PYTHON_VERSION),3.11)
DEPLOY_LINT_VENV ?= .venv-deploy-lint
DEPLOY_LINT_REQS ?= requirements/deploy-lint.txt
# A Kubernetes version whose schemas kubernetes-validate ships (native gRPC probes are GA since 1.27).
DEPLOY_K8S_VERSION ?= 1.33.0
DEPLOY_K8S_DIR ?= deploy/k8s
DEPLOY_K8S_MANIFESTS ?= $(sort $(wildcard $(DEPLOY_K8S_DIR)/*.yaml))
DEPLOY_CHECKOV_CONFIG ?= deploy/checkov.yaml

DEPLOY_LINT_BIN := $(DEPLOY_LINT_VENV)/bin
# Rebuilt only when the locked requirements change.
DEPLOY_LINT_STAMP := $(DEPLOY_LINT_VENV)/.requirements-installed

.PHONY: deploy-check deploy-lint-venv deploy-lint-clean

deploy-check: $(DEPLOY_LINT_STAMP) ## Static checks of Dockerfile, compose and deploy/k8s (hadolint, schemas, checkov).
	$(DEPLOY_LINT_BIN)/hadolint Dockerfile
	$(DEPLOY_LINT_BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(DEPLOY_LINT_BIN)/kubernetes-validate --kubernetes-version $(DEPLOY_K8S_VERSION) --strict --quiet \
		$(DEPLOY_K8S_MANIFESTS)
	$(DEPLOY_LINT_BIN)/checkov --config-file $(DEPLOY_CHECKOV_CONFIG) --framework dockerfile -f Dockerfile
	$(DEPLOY_LINT_BIN)/checkov --config-file $(DEPLOY_CHECKOV_CONFIG) --framework kubernetes \
		-d $(DEPLOY_K8S_DIR)
	@echo "deploy-check: all deployment files passed"

deploy-lint-venv: $(DEPLOY_LINT_STAMP) ## Create .venv-deploy-lint with the hash-locked checkers.

$(DEPLOY_LINT_STAMP): $(DEPLOY_LINT_REQS)
	$(DEPLOY_PYTHON) -m venv $(DEPLOY_LINT_VENV)
	$(DEPLOY_LINT_BIN)/python -m pip install --quiet --disable-pip-version-check \
		--require-hashes -r $(DEPLOY_LINT_REQS)
	touch $@

deploy-lint-clean: ## Remove .venv-deploy-lint.
	rm -rf $(DEPLOY_LINT_VENV)
