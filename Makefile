# The user interface of the project. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CHECKOV_VENV ?= .venv-checkov
CHECKOV_VERSION := 3.3.30
TERRAFORM ?= terraform
# A filesystem mirror of providers (offline machines): terraform init -plugin-dir=$(TF_PLUGIN_DIR)
TF_INIT_FLAGS := -input=false $(if $(TF_PLUGIN_DIR),-plugin-dir=$(TF_PLUGIN_DIR),)
STACK = $(shell $(PY) -m sdaas.config --stack-name)
STACK_DIR = cdktf.out/stacks/$(STACK)
PYTEST_ARGS ?=

.PHONY: help install synth check-config test lint schema docs openapi cost plan apply destroy \
        preflight bench local local-down upload-model agent-image clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed ## Create .venv with the pinned dependencies

synth: install ## Write the Terraform configuration (cdktf.out/stacks/<name>/cdk.tf.json)
	$(PY) main.py

check-config: install ## Check the configuration file as synth does (every problem, its path and line)
	$(PY) -m sdaas.config

test: install $(CHECKOV_VENV)/.installed ## Run the whole test suite (checkov runs in its own venv)
	$(PY) -m pytest $(PYTEST_ARGS)

$(CHECKOV_VENV)/.installed:
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	@touch $@

lint: install $(CHECKOV_VENV)/.installed synth ## ruff, then checkov over the synthesized configuration
	$(VENV)/bin/ruff check .
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --config-file .checkov.yaml \
	  --framework terraform_json -f $(STACK_DIR)/cdk.tf.json

schema: install ## Write config.schema.json (JSON Schema of the configuration file)
	$(PY) -m sdaas.config --schema > config.schema.json

openapi: install ## Regenerate docs/openapi.json (the API's OpenAPI 3.1 document; the API serves its own)
	$(PY) -m lambda_src.openapi > docs/openapi.json

docs: synth ## Regenerate docs/reference.md (config keys, construct props, outputs)
	$(PY) -m sdaas.docs $(STACK_DIR)

cost: synth ## Cost notes of your configuration (baseline per month, system node sizing, GPU per 1,000 images)
	@$(PY) -m sdaas.costs $(STACK_DIR)

# Printed when `terraform init` fails: every provider the configuration requires.
define REQUIRED_PROVIDERS_PY
import json, sys
required = json.load(open(sys.argv[1]))["terraform"]["required_providers"]
for name, spec in sorted(required.items()):
    print(f"  {spec.get('source', name)} {spec.get('version', '')}".rstrip())
endef
export REQUIRED_PROVIDERS_PY

plan: synth ## terraform plan: plan.out, plan.json and a Markdown summary plan.md
	@cd $(STACK_DIR) && $(TERRAFORM) init $(TF_INIT_FLAGS) >init.log 2>&1 || { \
	  cat init.log >&2; \
	  echo "terraform init could not install the providers this configuration requires:" >&2; \
	  $(abspath $(PY)) -c "$$REQUIRED_PROVIDERS_PY" cdk.tf.json >&2; \
	  echo "Without access to registry.terraform.io, set TF_PLUGIN_DIR to a filesystem mirror" \
	    "holding each of them (<dir>/registry.terraform.io/<source>/<version>/<os_arch>/)." >&2; \
	  exit 1; }
	cd $(STACK_DIR) && $(TERRAFORM) plan -input=false -out=plan.out
	cd $(STACK_DIR) && $(TERRAFORM) show -json plan.out > plan.json
	$(VENV)/bin/sd-plan-summary $(STACK_DIR)/plan.json > $(STACK_DIR)/plan.md
	@echo "Plan summary: $(STACK_DIR)/plan.md"

apply: ## Apply exactly the plan saved by `make plan`
	@test -f $(STACK_DIR)/plan.out || { echo "no saved plan: run 'make plan' first" >&2; exit 2; }
	cd $(STACK_DIR) && $(TERRAFORM) apply -input=false plan.out

destroy: synth ## Destroy everything the stack created
	cd $(STACK_DIR) && $(TERRAFORM) init $(TF_INIT_FLAGS) >/dev/null
	cd $(STACK_DIR) && $(TERRAFORM) destroy -input=false

preflight: install ## Read-only checks of the AWS account before apply
	$(PY) -m sdaas.preflight --config

local: install ## The whole async path on this machine (moto, Terraform, preview runtimes); Ctrl-C stops it
	$(PY) -m sdaas.local up

local-down: ## Stop a running `make local` from another terminal
	@test -x $(PY) || { echo "no local stack is running (no $(VENV))"; exit 0; }
	$(PY) -m sdaas.local down

bench: install ## Print the benchmark figures (synth, library import, agent throughput, local end to end)
	$(PY) bench/synth_bench.py
	$(PY) -m bench.import_bench
	$(PY) -m bench.agent_throughput
	$(PY) -m bench.local_e2e

upload-model: install ## Upload a checkpoint: make upload-model FILE=model.safetensors [RUNTIME=name] [BUCKET=b]
	@test -n "$(FILE)" || { echo "usage: make upload-model FILE=<checkpoint> [RUNTIME=<name>] [BUCKET=<bucket>]" >&2; exit 2; }
	$(PY) -m sdaas.upload_model "$(FILE)" $(if $(RUNTIME),--runtime "$(RUNTIME)") $(if $(BUCKET),--bucket "$(BUCKET)")

AGENT_TAG ?= $(shell $(PY) -c 'from sdaas.config import load_config; print(load_config().runtimes[0].agent_image_tag)')
agent-image: install ## Build agent/Dockerfile and push it to the stack's ECR repository (Docker + AWS credentials)
	@repo=$$($(TERRAFORM) -chdir=$(STACK_DIR) output -raw agent_repository_url) || exit 1; \
	registry=$${repo%%/*}; region=$$(echo $$registry | cut -d. -f4); \
	aws ecr get-login-password --region $$region | docker login --username AWS --password-stdin $$registry && \
	docker build --platform linux/amd64 -f agent/Dockerfile -t $$repo:$(AGENT_TAG) . && \
	docker push $$repo:$(AGENT_TAG)

clean: ## Remove generated files (keeps .venv)
	rm -rf cdktf.out .local config.schema.json
