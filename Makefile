# Quick start: `make demo` then `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: install demo test lint bench bench-full clean browser screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# pip's log goes to a file: some mirrors print one harmless warning per package.
	# torch/torchvision pinned to a pair that imports together (and lies on disk on our machines).
	$(PIP) install torch==2.14.1 torchvision==0.29.1 >$(VENV)/pip.log 2>&1 || (cat $(VENV)/pip.log; exit 1)
	$(PIP) install -e '.[dev,segment,openvino,stac]' >>$(VENV)/pip.log 2>&1 || (cat $(VENV)/pip.log; exit 1)
	$(BIN)/python -c "import agrivision" && touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/agrivision demo -o demo-output

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# The report's browser test drives Debian's chromium (no browser download); install it when
# missing and possible (root), else that one test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		>/dev/null 2>&1; } || echo "chromium not installed: the browser check will be skipped"

# The README's screenshots of report.html (docs/report-*.png), made by the browser test.
screenshots: $(STAMP) browser
	AGRIVISION_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/report/test_browser.py -k demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src/agrivision

# Each benchmark runs agrivision and its anchor side by side and prints a table with ratios.
# `make bench` is the quick pass (small scenes, minutes); `make bench-full` the full tiles.
BENCHMARKS := indices zonal vectorize vector_write segment full_tile clouds remote

bench: $(STAMP)
	for b in $(BENCHMARKS); do $(BIN)/python benchmarks/$$b.py --quick || exit 1; done

bench-full: $(STAMP)
	for b in $(BENCHMARKS); do $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) demo-output .pytest_cache
