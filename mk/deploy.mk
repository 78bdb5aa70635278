# Static checks for the deployment files, which cannot run here (no Docker engine, no cluster).
# The Kubernetes overlays are rendered first (kubectl kustomize) and the checkers read the result.
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
# The manifests are validated against the oldest Kubernetes they support (preStop `sleep`
# is on by default from 1.30; README.md says so) and a recent one.
DEPLOY_K8S_VERSIONS ?= 1.30.0 1.33.0
DEPLOY_K8S_DIR ?= deploy/k8s
DEPLOY_K8S_OVERLAYS ?= dev production
# Each overlay rendered by `kubectl kustomize` (kustomize v5 is built into kubectl),
# since the checkers read plain manifests (kept in the ignored checkers venv).
DEPLOY_K8S_RENDERED ?= $(DEPLOY_LINT_VENV)/rendered
KUBECTL ?= kubectl
DEPLOY_CHECKOV_CONFIG ?= deploy/checkov.yaml

DEPLOY_LINT_BIN := $(DEPLOY_LINT_VENV)/bin
# Rebuilt only when the locked requirements change.
DEPLOY_LINT_STAMP := $(DEPLOY_LINT_VENV)/.requirements-installed

.PHONY: deploy-check deploy-k8s-render deploy-lint-venv deploy-lint-clean

deploy-check: $(DEPLOY_LINT_STAMP) deploy-k8s-render ## Static checks of Dockerfile, compose and the k8s overlays (hadolint, schemas, checkov).
	$(DEPLOY_LINT_BIN)/hadolint Dockerfile
	$(DEPLOY_LINT_BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	for version in $(DEPLOY_K8S_VERSIONS); do \
		$(DEPLOY_LINT_BIN)/kubernetes-validate --kubernetes-version $$version --strict --quiet \
			$(DEPLOY_K8S_RENDERED)/*.yaml || exit 1; \
	done
	$(DEPLOY_LINT_BIN)/checkov --config-file $(DEPLOY_CHECKOV_CONFIG) --framework dockerfile -f Dockerfile
	$(DEPLOY_LINT_BIN)/checkov --config-file $(DEPLOY_CHECKOV_CONFIG) --framework kubernetes \
		-d $(DEPLOY_K8S_RENDERED)
	@echo "deploy-check: all deployment files passed"

deploy-k8s-render: ## Render each deploy/k8s overlay with kubectl kustomize into .venv-deploy-lint/rendered/.
	rm -rf $(DEPLOY_K8S_RENDERED) && mkdir -p $(DEPLOY_K8S_RENDERED)
	for overlay in $(DEPLOY_K8S_OVERLAYS); do \
		$(KUBECTL) kustomize $(DEPLOY_K8S_DIR)/overlays/$$overlay > $(DEPLOY_K8S_RENDERED)/$$overlay.yaml \
			|| exit 1; \
	done

deploy-lint-venv: $(DEPLOY_LINT_STAMP) ## Create .venv-deploy-lint with the hash-locked checkers.

$(DEPLOY_LINT_STAMP): $(DEPLOY_LINT_REQS)
	$(DEPLOY_PYTHON) -m venv $(DEPLOY_LINT_VENV)
	$(DEPLOY_LINT_BIN)/python -m pip install --quiet --disable-pip-version-check \
		--require-hashes -r $(DEPLOY_LINT_REQS)
	touch $@

deploy-lint-clean: ## Remove .venv-deploy-lint (with the rendered manifests).
	rm -rf $(DEPLOY_LINT_VENV)
