# kiloscribe-lab: every target sets the project up first, so a fresh clone needs no other step.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The lab's proxies (networks corporate-proxy and mobile) are mitmproxy's mitmdump, in a venv
# of their own: mitmproxy pins h11, h2, tornado... below the project's, and 12.x needs Python
# 3.12. 11.0.2 is the last release for 3.11. kiloscribe_lab/lab/lab_networks.py looks here.
MITMPROXY_VERSION := 11.0.2
MITM_VENV  := $(VENV)/tools/mitmproxy
MITM_STAMP := $(MITM_VENV)/.installed-$(MITMPROXY_VERSION)
LAB_DIR ?= .lab
SCENARIO ?= incident
# Debian packages the lab and the tests run: nginx and HAProxy (the lab's other balancers),
# Chromium (the report's browser test) and OpenSSL (the foreign-server tests' certificate chains).
# `make setup` installs the missing ones when it runs as root (as CI does); otherwise it prints
# the one command to run. Tests never skip without them.
SYSTEM_PACKAGES := nginx-light haproxy chromium openssl
SYSTEM_COMMANDS := nginx haproxy chromium openssl

.PHONY: setup system-packages test test-unit test-lab lint fmt report lab lab-up lab-down lab-status bench fixtures scenario-table findings-table clean

setup: $(STAMP) $(MITM_STAMP) system-packages

system-packages:
	@missing=""; for c in $(SYSTEM_COMMANDS); do \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing $(SYSTEM_PACKAGES) (missing:$$missing)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null \
	    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; }; \
	else \
	  echo "missing:$$missing. Install them with: sudo apt-get install $(SYSTEM_PACKAGES)"; \
	fi

# Re-install only when the project's metadata changed: `make setup` is a no-op otherwise.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[dev,cluster]"
	touch $(STAMP)

$(MITM_STAMP):
	test -x $(MITM_VENV)/bin/python || $(PYTHON) -m venv $(MITM_VENV)
	$(MITM_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(MITM_VENV)/bin/python -m pip install --quiet "mitmproxy==$(MITMPROXY_VERSION)"
	touch $(MITM_STAMP)

# pytest's default progress: a line per test file with its dots and the run's percentage (CI logs
# show which file is running), and the ten slowest tests at the end.
test: setup
	$(BIN)/python -m pytest --durations=10

test-unit: setup
	$(BIN)/python -m pytest -q -m unit

test-lab: setup
	$(BIN)/python -m pytest -q -m lab

# The notebooks' code cells are linted too (not reformatted: their layout is written for reading).
lint: setup
	$(BIN)/ruff check kiloscribe_lab tests notebooks
	$(BIN)/ruff format --check kiloscribe_lab tests
	$(BIN)/mypy
	# the proxies' addon, against the mitmproxy it runs in
	$(BIN)/mypy --python-executable $(MITM_VENV)/bin/python kiloscribe_lab/lab/mitm_network.py

fmt: setup
	$(BIN)/ruff format kiloscribe_lab tests
	$(BIN)/ruff check --fix kiloscribe_lab tests notebooks

# The main job: start the lab (scenario incident), run the notebook matrix, render
# reports/YYYY-MM-DD/findings.html, stop the lab.
report: setup
	$(BIN)/kiloscribe-lab report

# JupyterLab on notebooks/investigate.ipynb with a lab running; the lab stops when JupyterLab
# exits (Ctrl-C twice: the shell ignores it, so `lab down` still runs). Jupyter logs warnings
# only; once its server has written its runtime file (in a directory of this run's own), the
# notebook's link and then the lab's URLs are printed, last.
JUPYTER_LINK := import json, pathlib, sys; \
  info = json.loads(next(pathlib.Path(sys.argv[1]).glob("jpserver-*[0-9].json")).read_text()); \
  print("JupyterLab, on the on-call notebook:", \
        info["url"].rstrip("/") + "/lab/tree/investigate.ipynb?token=" + info["token"])
lab: setup
	@urls=$$($(BIN)/kiloscribe-lab lab up --dir $(LAB_DIR) --scenario $(SCENARIO)) || exit $$?; \
	runtime=$$(mktemp -d); trap '' INT; \
	( until ls $$runtime/jpserver-*-open.html >/dev/null 2>&1; do sleep 0.2; done; sleep 1; \
	  echo; $(BIN)/python -c '$(JUPYTER_LINK)' $$runtime; printf '\n%s\n\n' "$$urls" ) & waiter=$$!; \
	KILOSCRIBE_LAB_DIR=$(abspath $(LAB_DIR)) JUPYTER_RUNTIME_DIR=$$runtime \
	  $(BIN)/jupyter lab --ServerApp.root_dir=notebooks --ServerApp.default_url=/lab/tree/investigate.ipynb \
	  --log-level=WARN --LabApp.log_level=WARN $(if $(filter 0,$(shell id -u)),--allow-root); \
	status=$$?; kill $$waiter 2>/dev/null; rm -rf $$runtime; \
	$(BIN)/kiloscribe-lab lab down --dir $(LAB_DIR); exit $$status

# Speed is measured here, as ratios against baselines in the same run; never in `make test`.
bench: setup
	$(BIN)/python bench/run.py

# The unit tests' recorded lab evidence (tests/unit/fixtures/<scenario>.jsonl): each scenario's
# lab started, investigated as the lab tests do, stopped. `make fixtures SCENARIOS=incident` for one.
fixtures: setup
	$(BIN)/python -m tests.unit.fixtures.record $(SCENARIOS)

# The README's findings table, rendered from the rules' declarations (a unit test compares them).
findings-table: setup
	$(BIN)/kiloscribe-lab findings --readme README.md

# The README's scenario table, rendered from kiloscribe_lab/lab/scenarios.py (a unit test compares them).
scenario-table: setup
	$(BIN)/python -m kiloscribe_lab.lab.scenarios --readme README.md

lab-up: setup
	$(BIN)/kiloscribe-lab lab up --dir $(LAB_DIR) --scenario $(SCENARIO)

lab-down: setup
	$(BIN)/kiloscribe-lab lab down --dir $(LAB_DIR)

lab-status: setup
	$(BIN)/kiloscribe-lab lab status --dir $(LAB_DIR)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
