# SpermGrade: `make demo` to try it, `make test` to run the whole suite.
#
# Both create .venv on first use; a stamp file per requirements file means the
# environment is reinstalled only when a requirements file changes.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
SQLITE_PYTEST_ARGS ?=
BENCH_ARGS ?=

RUNTIME_STAMP := $(VENV)/.stamp-requirements
DEV_STAMP := $(VENV)/.stamp-requirements-dev

.PHONY: help demo demo-reset test test-sqlite lint format bench-web gpu-carry venv venv-dev \
	mutate

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "}; {printf "  make %-11s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): requirements.txt | $(PY)
	$(PY) -m pip install -r requirements.txt
	@touch $@

# requirements-dev.txt includes requirements.txt, so it satisfies the runtime stamp too.
# Playwright's Python package only: the browser tests drive Debian's /usr/bin/chromium,
# so no browser is downloaded.
$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install -r requirements-dev.txt
	@touch $@ $(RUNTIME_STAMP)

venv: $(RUNTIME_STAMP) ## create .venv with the runtime requirements

venv-dev: $(DEV_STAMP) ## create .venv with the test and lint requirements too

# The demo is a development server: DEBUG on (production's default is off).
# The server runs in the background and the shell waits for it: a shell running a
# foreground command defers its traps until that command ends, so a TERM sent to
# make (which make passes on to this shell) would leave the server running. Both
# children are stopped on Ctrl-C, TERM or hang-up, and the worker when the server
# exits by itself (a port in use).
# A worker still busy 10 s after the TERM (a training fold) is stopped cold (QUIT),
# and one still alive 10 s after that is killed (KILL). The embedded worker runs
# tasks in threads, which cannot be cancelled: its warm and its cold shutdown both
# wait for the running task (celery's thread pool shuts its executor down with
# wait), and the demo's first training takes minutes on a busy machine, so make
# would wait for it. A killed worker's job is re-run by the reaper, as after any
# lost worker.
demo: export DEBUG ?= true
demo: $(RUNTIME_STAMP) ## migrate SQLite, load the synthetic demo, serve it with a Celery worker
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_data
	$(PY) manage.py demo_recordings
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@$(PY) -c "from config.celery import ensure_broker_folders; ensure_broker_folders()"
	$(PY) manage.py training_run --profile clinic --trigger demo --unless-version
	@$(VENV)/bin/celery -A config.celery worker -Q cpu,gpu --concurrency 1 \
		-B \
		--loglevel INFO --hostname demo@%h & worker=$$!; \
	$(PY) manage.py runserver --noreload $(HOST):$(PORT) & server=$$!; \
	trap 'kill $$server $$worker 2>/dev/null; \
		for i in $$(seq 50); do kill -0 $$worker 2>/dev/null || break; sleep 0.2; done; \
		kill -QUIT $$worker 2>/dev/null; \
		for i in $$(seq 50); do kill -0 $$worker 2>/dev/null || break; sleep 0.2; done; \
		kill -KILL $$worker 2>/dev/null; wait' EXIT; \
	trap 'exit 0' INT TERM HUP; \
	echo; \
	echo "  SpermGrade demo (synthetic data): http://$(HOST):$(PORT)/"; \
	echo "  expert login: expert / grade-sperm-demo"; \
	echo "  admin login:  admin / admin-demo-pass"; \
	echo "  Ctrl-C stops the web server and the Celery worker."; \
	echo; \
	wait $$server

demo-reset: ## delete the demo database, media and broker folders under var/
	rm -rf var/spermgrade.sqlite3 var/media var/celery var/staticfiles

test: $(DEV_STAMP) ## the whole suite on PostgreSQL, then the app tests on the demo's SQLite
	$(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-sqlite

# The demo runs on SQLite: the grading and worker tests run on it too (the tests
# marked postgres are left to the run above).
SQLITE_TESTS ?= tests/annotation tests/registry tests/dashboards tests/workers

test-sqlite: $(DEV_STAMP) ## the annotation, dashboards and worker tests on SQLite (the demo database)
	SPERMGRADE_TEST_SQLITE=1 $(PY) -m pytest $(SQLITE_TESTS) $(SQLITE_PYTEST_ARGS)

lint: $(DEV_STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(DEV_STAMP) ## ruff fix and format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench-web: $(DEV_STAMP) ## load benchmark: 40 experts against gunicorn + throwaway PostgreSQL
	$(PY) benchmarks/web_load.py $(BENCH_ARGS)

# The device machine has PyTorch, timm and transformers but not these; they are
# pure Python, so they travel as copied folders (carry .gpu_site; PYTHONPATH).
GPU_CARRY := pytorchvideo fvcore iopath timm yacs termcolor
gpu-carry: $(RUNTIME_STAMP) ## .gpu_site/: packages the GPU slot carries (benchmarks/gpu_slot.py)
	@rm -rf .gpu_site && mkdir -p .gpu_site
	@site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	for pkg in $(GPU_CARRY); do cp -r "$$site/$$pkg" .gpu_site/; done
	@find .gpu_site -name __pycache__ -prune -exec rm -rf {} +
	@du -sh .gpu_site

# Mutation testing (docs/mutation.md); not part of `make test` or CI: about 95
# minutes on one worker of a shared 2-core VM. The files are listed in pyproject.toml's [tool.mutmut]; of
# rostfine.py and timesformer.py only the patch selection's functions are run.
# One worker, SQLite (the test plugin would otherwise start PostgreSQL for every
# mutant), one compute thread.
MUTATE_NAMES ?= 'modeling.losses.*' 'modeling.metrics.*' 'modeling.cv.*' \
	'modeling.paired.*' 'modeling.controls.*' \
	'modeling.models.rostfine.x_patches_select__mutmut_*' \
	'modeling.models.rostfine.x_branch_inputs__mutmut_*' \
	'modeling.models.rostfine.*RoSTFine*branch_features__mutmut_*' \
	'modeling.models.timesformer.x_cls_attention__mutmut_*' \
	'modeling.models.timesformer.*TimeSformer*forward_tokens__mutmut_*'
MUTATE_CHILDREN ?= 1

mutate: $(DEV_STAMP) ## mutation testing of modeling/ with mutmut (1.5 h; docs/mutation.md)
	SPERMGRADE_TEST_SQLITE=1 OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run \
		--max-children $(MUTATE_CHILDREN) $(MUTATE_NAMES)
	$(PY) benchmarks/mutation_score.py $(MUTATE_NAMES)
