# gencluster — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
CLUSTER_DIR := $(ROOT)/.cluster
export KUBECONFIG ?= $(CLUSTER_DIR)/kubeconfig
export PATH := $(CLUSTER_DIR)/bin:$(PATH)
GENCLUSTER_CACHE ?= $(HOME)/.cache/gencluster
CLUSTER_BIN := $(GENCLUSTER_CACHE)/bin
CHART := charts/gencluster-operator
CRD := crds/generationclusters.orfeas.ai.yaml
PYTEST_ARGS ?=

include hack/cluster.mk

.PHONY: help
help: ## this list
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: install
install: deps ## create the cached virtualenv (.venv) and install the project in it
	@bash hack/venv.sh

.PHONY: lint
lint: install ## ruff and mypy (strict for the operator core), CRD and chart in sync, helm lint
	$(VENV)/bin/ruff check operator workload tests benchmarks
	$(VENV)/bin/mypy
	@$(MAKE) --no-print-directory crds-check
	@$(MAKE) --no-print-directory chart-lint
	@$(MAKE) --no-print-directory chart-scan

.PHONY: crds
crds: install ## regenerate the CRD from the API models, and the chart's copy
	$(VENV)/bin/gencluster crds --out $(CRD)
	cp $(CRD) $(CHART)/crds/

.PHONY: crds-check
crds-check: install ## fail if crds/ or the chart's copy differ from the API models
	@$(VENV)/bin/gencluster crds | diff -u $(CRD) - && diff -u $(CRD) $(CHART)/crds/$(notdir $(CRD)) && echo "CRD in sync"

.PHONY: chart-lint
chart-lint: deps ## helm lint and helm template (the rendered chart is validated by a real apiserver in tests/api)
	@bash hack/build-binaries.sh helm
	$(CLUSTER_BIN)/helm lint $(CHART)
	$(CLUSTER_BIN)/helm template gencluster $(CHART) --namespace gencluster-system >/dev/null

.PHONY: chart-scan
chart-scan: deps ## policy scan (checkov) of the rendered chart, every option on; exceptions justified in hack/checkov.yaml
	@bash hack/build-binaries.sh helm
	@bash hack/chart-scan.sh

.PHONY: test
test: install binaries ## every test: unit, workload, control, redis, API and e2e on the local cluster
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: install ## tests that need neither the local cluster nor long runs
	$(PY) -m pytest -m "not cluster" $(PYTEST_ARGS)

.PHONY: deploy
deploy: images ## install the operator chart into the local cluster with the local images
	$(CLUSTER_BIN)/helm upgrade --install gencluster $(CHART) --namespace gencluster-system \
	  --create-namespace --wait --timeout 5m -f hack/values-local.yaml

.PHONY: undeploy
undeploy: ## uninstall the operator chart (GenerationClusters and their children stay until deleted)
	-$(CLUSTER_BIN)/helm uninstall gencluster --namespace gencluster-system

.PHONY: demo
demo: install cluster-up deploy ## the whole loop on the local cluster: load arrives, the operator reacts
	$(VENV)/bin/gencluster demo

.PHONY: demo-down
demo-down: ## remove the demo's GenerationCluster, the operator, and stop the local cluster
	-kubectl delete namespace gencluster-demo --ignore-not-found --wait=true
	-$(MAKE) --no-print-directory undeploy
	$(MAKE) --no-print-directory cluster-down
