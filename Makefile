# Two commands do everything on a fresh Debian 12 machine (run as root, or see `make system`):
#   make run    install what is missing, then start the whole service on embedded defaults
#   make test   install what is missing, then run the test suite
# Both are idempotent and take a second when everything is already installed.

PYTHON  ?= python3
VENV    := .venv
# Two locks: requirements.txt, the runtime (make run, deploy/); requirements-dev.txt, the runtime
# and the tests, the linter, the browser, the notebook and the manual (make test, test-fast, lint).
# A stamp per lock, named by its hash: each is installed again only when it changes.
REQHASH := $(shell cat requirements.txt | sha256sum | cut -c1-16)
STAMP   := $(VENV)/.installed-$(REQHASH)
DEVHASH  := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
DEVSTAMP := $(VENV)/.dev-installed-$(DEVHASH)
# make run's MongoDB where there is no mongod: SecantusDB, pinned in the dev lock with the two
# dependencies of its own the runtime lock has not (pyproject.toml's extra 'local').
LOCALSTACK := $(shell grep -iE '^(secantusdb|s2sphere|shapely)==' requirements-dev.txt)
# The benchmarks' extras (requirements-bench.txt): installed by make bench only, never by make test.
BENCHHASH  := $(shell sha256sum requirements-bench.txt | cut -c1-16)
BENCHSTAMP := $(VENV)/.bench-installed-$(BENCHHASH)
# The classes a worker's JVM loads, dumped once per install of the dev lock
# (localservers/sparkarchive.py): every JVM of make test maps them instead of loading them again.
SPARKARCHIVE := $(VENV)/spark-classes.jsa

.PHONY: run test test-fast test-times setup setup-dev system venv venv-dev lint bench docs clean

run: setup
	$(VENV)/bin/python -m localservers.stack

# Two streams (pytest-xdist), whole files to a stream, each with servers of its own: most of a
# test's time is spent waiting for a process, a JVM or a poll, so two streams on two cores take
# about half the time of one. TEST_STREAMS=0 runs the suite in this process alone. The files go
# to the streams heaviest first, by the seconds tests/filetimes.json records (tests/helpers.py,
# heaviest_first), not by xdist's count of their tests: the light files then fill the end.
TEST_STREAMS ?= 2
DIST := -n $(TEST_STREAMS) --dist loadfile --no-loadscope-reorder

test: setup-dev $(SPARKARCHIVE)
	$(VENV)/bin/python -m pytest $(DIST) --durations=20

# The unit and app tiers (tests/conftest.py): no Spark, no service processes, no browser.
test-fast: setup-dev
	$(VENV)/bin/python -m pytest -m "not system" $(DIST)

# The whole suite, recording the seconds each file took into tests/filetimes.json (commit it).
test-times: setup-dev $(SPARKARCHIVE)
	$(VENV)/bin/python -m pytest $(DIST) --record-file-times tests/filetimes.json

setup: system venv

setup-dev: system venv-dev

# apt packages: only when a command is missing (or Java is older than 17). Chromium and its
# driver are for the browser tests and the README's screenshot; tmux for the test of make run in
# a real terminal.
system:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v haproxy >/dev/null 2>&1 || missing="$$missing haproxy"; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	jv=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1); \
	[ -n "$$jv" ] && [ "$$jv" -ge 17 ] || missing="$$missing openjdk-17-jre-headless"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "Missing system packages:$$missing"; \
	    echo "Install them as root:  sudo apt-get update && sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	  echo "installing$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends$$missing; \
	fi

venv: $(STAMP)

venv-dev: $(DEVSTAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt $(LOCALSTACK)
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

# The dev lock holds the runtime lock and SecantusDB: installed, make run's stamp holds too.
$(DEVSTAMP): requirements.txt requirements-dev.txt
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* $(VENV)/.dev-installed-*; touch $(STAMP) $(DEVSTAMP)

# Without the archive (its build failed: the log says why) the tests run as they would with it,
# only slower; make test tries again next time.
$(SPARKARCHIVE): $(DEVSTAMP)
	@echo "dumping the classes a worker's JVM loads into $@ (about a minute, once)"
	@$(VENV)/bin/python -m localservers.sparkarchive $@ >$(VENV)/spark-classes.log 2>&1 || \
	  echo "no class archive (see $(VENV)/spark-classes.log): the tests' JVMs load their classes as usual"

$(BENCHSTAMP): requirements-bench.txt $(DEVSTAMP)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-bench.txt
	@rm -f $(VENV)/.bench-installed-*; touch $(BENCHSTAMP)

lint: setup-dev
	$(VENV)/bin/ruff check .

bench: setup-dev $(BENCHSTAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

# The manual (mkdocs.yml, docs/) into var/site, --strict as the suite builds it; the service never
# needs it. NO_MKDOCS_2_WARNING quiets Material's notice about MkDocs 2.
docs: setup-dev
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/python -m mkdocs build --strict

clean:
	rm -rf var .pytest_cache .ruff_cache
