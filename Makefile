# The two set-up commands (README): `make lab` and `make test`.
# Each creates .venv when it is missing, installs kalab into it, then runs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab test bench clean system-deps site

$(PY):
	$(PYTHON) -m venv $(VENV)

# One dependency truth: install exactly what Binder installs, then the test tools.
$(STAMP): $(PY) pyproject.toml binder/requirements.txt jupyter-config/jupyter_server_config.d/kalab.json
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r binder/requirements.txt
	$(PY) -m pip install --quiet -e '.[test]'
	@# An editable install leaves out pyproject's data-files (a wheel, as Binder installs, has them):
	@# put the Jupyter server extension's switch (kalab/jupyter.py) where the wheel would.
	install -D -m 644 jupyter-config/jupyter_server_config.d/kalab.json \
	    $(VENV)/etc/jupyter/jupyter_server_config.d/kalab.json
	touch $(STAMP)

# As root (containers, VMs) JupyterLab needs --allow-root; Binder and hubs run as a user.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,) notebooks/

# Debian packages for the real-kernel lab (root only; a no-op otherwise).
system-deps:
	@scripts/install-system-deps.sh

test: $(STAMP) system-deps
	$(PY) -m pytest -q

# The notebooks as a static site in site/ (executed; figures drawn without a kernel; offline).  The
# Binder links name the published repository: the git remote, or REPO=https://github.com/OWNER/REPO.
site: $(STAMP)
	$(PY) scripts/build_site.py --out site $(if $(REPO),--repo $(REPO),) $(if $(REF),--ref $(REF),)

bench: $(STAMP)
	$(PY) benchmarks/simulate.py

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache .hypothesis .lab
