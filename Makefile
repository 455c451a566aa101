# The two commands: `make demo` and `make test`. Both create .venv and install the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_VIDEO := data/demo.mp4

.PHONY: demo test install clean

install: $(STAMP)

# Reinstall only when the dependencies change; the package itself is installed editable.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The sample video is generated (deterministically) by our own scene generator.
$(DEMO_VIDEO): $(STAMP) $(wildcard synth/*.py synth/*/*.py)
	$(BIN)/detstream synth video $(DEMO_VIDEO) --seed 7 --size 1280x720 --fps 25 --seconds 10

demo: $(STAMP) $(DEMO_VIDEO)
	$(BIN)/detstream run configs/demo.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf out data/demo.mp4 data/demo.json .pytest_cache
