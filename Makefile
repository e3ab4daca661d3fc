# Two commands do all set-up on a fresh machine:
#   make run   — the dashboard on the bundled model and sample clips
#   make test  — the whole test suite
# Each creates .venv from requirements.txt on first use (about 2 minutes).

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PORT    ?= 8501
ADDRESS ?= 127.0.0.1

.PHONY: run test journeys venv lint bench samples train browser clean-cache

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/streamlit run streamlit_app.py --server.address $(ADDRESS) --server.port $(PORT)

# Debian's Chromium for the browser test (installed when we may; skipped otherwise).
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "warning: could not install chromium; the browser test will be skipped"

test: $(STAMP) browser
	$(PY) -m pytest -q

# Only the browser journeys (they are part of `make test` too).
journeys: $(STAMP) browser
	$(PY) -m pytest -q -m journey tests/journeys

lint: $(STAMP)
	$(VENV)/bin/ruff check xai_core dashboard tests scripts benchmarks streamlit_app.py

# Each benchmark prints Markdown to paste into benchmarks/RESULTS.md (run on an idle machine).
bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

samples: $(STAMP)
	$(PY) scripts/make_samples.py

train: $(STAMP)
	$(PY) scripts/train_bundled.py --model motion --steps 320
	$(PY) scripts/train_bundled.py --model context-biased --steps 200
