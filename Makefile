# The README's commands. GLUE is found as train.py finds it: $GLUE_DIR if set, else data/glue in
# this repository, where a missing task is downloaded (see data/README.md).
PYTHON ?= python3
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.PHONY: install test demo dry-run bench-accuracy

install:
	$(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -e ".[test]"

test:
	$(PYTHON) -m pytest -q tests

# P-tuning v2 on MRPC with the offline MiniLM checkpoint (MRPC is fetched into data/glue if missing);
# minutes on a 2-core CPU.
demo:
	$(PYTHON) train.py --task mrpc --model minilm --method prefix --output-dir runs/demo --overwrite

dry-run:
	$(PYTHON) train.py --task mrpc --dry-run

bench-accuracy:
	$(PYTHON) bench/accuracy.py --tasks mrpc
