# Two entry points: `make demo` and `make test`. Both create or reuse .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.unireward-installed

.PHONY: demo test lint install clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and explicitly, so no dependency pulls a different build.
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The app's browser tests drive the system's Chromium (Debian's package; installed once, as root).
browser:
	./.ci/install-chromium.sh

test: $(STAMP) browser
	HF_HUB_OFFLINE=1 $(BIN)/ruff check src tests benchmarks
	# pytest exits 5 when it collected nothing: for us that is a broken suite, never a pass.
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/unireward demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf runs build *.egg-info
