# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The stamp is newer than the files that define the install: repeated `make` calls install nothing.
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench bench-keras bench-strategies bench-text bench-advise bench-da bench-rl bench-vision gpu-check clean

install: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,text,explain,track,export,docs,rl,vision]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/transferlab demo

# The suite in one worker process per core (pytest-xdist; at most 4; TEST_JOBS=0: all in this process), each
# with one OpenMP thread, so the workers never contend for a core. worksteal: an idle worker takes tests
# queued for a busy one.
TEST_JOBS ?= auto
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(TEST_JOBS) --maxprocesses 4 --dist worksteal

bench: $(STAMP)
	$(PY) benchmarks/seed_mlp.py
	$(PY) benchmarks/threads.py
	$(PY) benchmarks/frozen_cache.py
	$(PY) benchmarks/denormals.py
	$(PY) benchmarks/compile.py
	$(PY) benchmarks/flops.py
	$(PY) benchmarks/compare_grid.py
	$(PY) benchmarks/keras_seed.py

# On a machine with an NVIDIA GPU: the end-to-end path on CUDA vs the CPU (exits 3 without a GPU).
gpu-check: $(STAMP)
	PYTHON=$(PY) bash benchmarks/gpu_check.sh

bench-strategies: $(STAMP)
	$(PY) benchmarks/strategies.py

bench-text: $(STAMP)
	$(PY) benchmarks/text_transfer.py

bench-advise: $(STAMP)
	$(PY) benchmarks/advise.py

# Domain adaptation from unlabeled target data: 4 pairs × 0 and 5 labels per class × 5 seeds (long on a CPU).
bench-da: $(STAMP)
	$(PY) benchmarks/domain_adaptation.py

# RL transfer (issue 17): PPO and DQN, 2 helps pairs + 1 hurts pair (+ reversed actions, reported), 5 seeds, 2 runs at a time.
bench-rl: $(STAMP)
	$(PY) benchmarks/rl_transfer.py --jobs 2

# ImageNet EfficientNet-Lite0 vs the MNIST-5k cnn vs scratch on Fashion-MNIST (docs/vision.md).
bench-vision: $(STAMP)
	$(PY) benchmarks/vision_transfer.py

# The seed's Keras example needs tensorflow-cpu: a separate venv, so the main one stays torch-only.
KERAS_VENV := .venv-keras
$(KERAS_VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(KERAS_VENV)
	$(KERAS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e . tensorflow-cpu
	touch $@

bench-keras: $(KERAS_VENV)/.installed
	$(KERAS_VENV)/bin/python benchmarks/keras_seed.py

clean:
	rm -rf $(VENV) $(KERAS_VENV) demo-out
