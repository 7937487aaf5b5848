# Two commands matter: `make run` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced

.PHONY: run test lint supply-chain bootstrap clean bench bench-feed bench-agents bench-cli bench-portal bench-api bench-deploy bench-ssh bench-load bench-summary soak system-packages images

$(STAMP): uv.lock pyproject.toml */pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.8
	$(BIN)/uv sync --frozen --all-packages --quiet
	@touch $(STAMP)

bootstrap: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m cephalo_dev run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs/common/src services/*/src agent/src cli/src dev/src
	$(MAKE) --no-print-directory supply-chain

# bandit, a secrets scan and pip-audit over the lock (see dev/src/cephalo_dev/supplychain.py).
supply-chain: $(STAMP)
	$(BIN)/bandit -q -c pyproject.toml --severity-level medium --confidence-level medium -r libs/common/src services/*/src agent/src cli/src dev/src
	$(BIN)/python -m cephalo_dev.supplychain secrets
	$(BIN)/python -m cephalo_dev.supplychain audit $(BIN)/uv

# SSH target tests run a real OpenSSH sshd on loopback, the portal's browser tests a headless
# Debian Chromium (Playwright drives it; no browser is downloaded): install them when missing
# (as root).
system-packages:
	@command -v sshd >/dev/null 2>&1 || test -x /usr/sbin/sshd || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server >/dev/null \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server >/dev/null; }; \
	  else echo "openssh-server is missing: install it (apt-get install openssh-server)"; exit 1; fi; }
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	  else echo "chromium is missing: install it (apt-get install chromium)"; exit 1; fi; }

# Serial by default: on 2 cores two xdist workers took as long as one (29 min, 2026-12-07) and
# broke module-scoped state in two suites. TEST_WORKERS=2 opts in (docs/operations.md#tests).
TEST_WORKERS ?= 0
test: lint system-packages
	$(BIN)/pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder)

# Every benchmark; each writes its own section of docs/benchmarks.md and docs/benchmarks/NAME.json,
# then the summary at the top of docs/benchmarks.md is rebuilt from those JSON files. `-k` so
# one failing benchmark still leaves the others' numbers and the summary.
bench: $(STAMP)
	@$(MAKE) --no-print-directory -k bench-feed bench-agents bench-cli bench-portal bench-api \
	  bench-deploy bench-ssh bench-load; status=$$?; $(MAKE) --no-print-directory bench-summary; exit $$status

bench-summary: $(STAMP)
	$(BIN)/python -m cephalo_dev.benchreport

# wrk (Debian package) drives the load; installed when missing (as root, like system-packages).
# Without it bench_api.py falls back to its Python load generator and says so.
bench-api: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; } \
	      || echo "wrk could not be installed: using the Python load generator"; \
	  else echo "wrk is missing (apt-get install wrk): using the Python load generator"; fi; }
	$(BIN)/python tests/bench/bench_api.py $(BENCH_API_ARGS)

bench-feed: $(STAMP)
	sh services/package-feed/bench/ensure_nginx.sh
	$(BIN)/python services/package-feed/bench/bench_feed.py $(BENCH_FEED_ARGS)

bench-agents: $(STAMP)
	$(BIN)/python tests/bench/bench_agents.py

# Ansible is the reference, not a dependency: a pinned ansible-core in a venv of its own
# (2.19 is the last line that runs on Python 3.11).
ANSIBLE_CORE := 2.19.15
BENCH_ANSIBLE := .cephalo/bench-ansible
$(BENCH_ANSIBLE)/.ansible-core-$(ANSIBLE_CORE):
	rm -rf $(BENCH_ANSIBLE)
	$(BIN)/python -m venv $(BENCH_ANSIBLE)
	$(BENCH_ANSIBLE)/bin/pip install --quiet --disable-pip-version-check ansible-core==$(ANSIBLE_CORE)
	@touch $@

bench-ssh: $(STAMP) system-packages $(BENCH_ANSIBLE)/.ansible-core-$(ANSIBLE_CORE)
	$(BIN)/python tests/bench/bench_ssh.py --ansible $(BENCH_ANSIBLE)/bin/ansible $(BENCH_SSH_ARGS)

bench-cli: $(STAMP)
	$(BIN)/python cli/bench/bench_cli.py

# One image per service and one for the agent (needs Docker; the Helm chart pulls them).
IMAGE_SERVICES := api-gateway release-service deploy-orchestrator package-feed agent-gateway
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: "\(.*\)"/\1/p' deploy/helm/cephalo/Chart.yaml)
images:
	@command -v docker >/dev/null 2>&1 || { echo "make images needs docker"; exit 1; }
	for service in $(IMAGE_SERVICES); do \
	  docker build -f services/$$service/Dockerfile -t cephalo/$$service:$(IMAGE_TAG) . || exit 1; \
	done
	docker build -f agent/Dockerfile -t cephalo/agent:$(IMAGE_TAG) .

bench-portal: $(STAMP)
	$(BIN)/python tests/bench/bench_portal.py

clean:
	rm -rf $(VENV) .cephalo

bench-deploy: $(STAMP)
	$(BIN)/python tests/bench/bench_deploy.py $(BENCH_DEPLOY_ARGS)

# R10: 1,000 concurrent API clients for 60 s against the whole stack (3 runs, about 5 min).
bench-load: $(STAMP)
	$(BIN)/python tests/bench/bench_load.py $(BENCH_LOAD_ARGS)

# R15, not in CI nor in `make bench`: deployments for SOAK_MINUTES with agent links cut every 30 s;
# reports memory growth, leaked tasks and connections (section bench-soak, docs/benchmarks/soak.json).
SOAK_MINUTES ?= 20
soak: $(STAMP)
	$(BIN)/python tests/bench/soak.py --minutes $(SOAK_MINUTES) $(SOAK_ARGS)
