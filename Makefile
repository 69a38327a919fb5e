# The two set-up commands (README): `make lab` and `make test`.
# Each creates .venv when it is missing, installs kalab into it, then runs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab test bench clean system-deps

$(PY):
	$(PYTHON) -m venv $(VENV)

# One dependency truth: install exactly what Binder installs, then the test tools.
$(STAMP): $(PY) pyproject.toml binder/requirements.txt
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r binder/requirements.txt
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# As root (containers, VMs) JupyterLab needs --allow-root; Binder and hubs run as a user.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,) notebooks/

# Debian packages for the real-kernel lab (root only; a no-op otherwise).
system-deps:
	@scripts/install-system-deps.sh

test: $(STAMP) system-deps
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/simulate.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
