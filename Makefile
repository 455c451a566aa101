# The two commands: `make demo` and `make test`. Both create .venv and install the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_VIDEO := data/demo.mp4

.PHONY: demo test install clean models bench ladder int8 capacity ladder-models system-deps

install: $(STAMP)

# Reinstall only when the dependencies change; the package itself is installed editable.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,ray]'
	touch $(STAMP)

# The sample video is generated (deterministically) by our own scene generator.
$(DEMO_VIDEO): $(STAMP) $(wildcard synth/*.py synth/*/*.py)
	$(BIN)/detstream synth video $(DEMO_VIDEO) --seed 7 --size 1280x720 --fps 25 --seconds 10

demo: $(STAMP) $(DEMO_VIDEO)
	$(BIN)/detstream run configs/demo.yaml

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q --durations=25

# Debian packages the tests need: GStreamer's RTSP server for the system python3
# (tests/rtsp/server.py), the headless browser that loads the live page
# (tests/api/test_page.py, via Selenium), and the MQTT broker the MQTT sink's tests start
# (tests/sinks/test_mqtt.py), and redis-server (the Redis tests and the soak start their own).
# Installed only when one is missing; sudo when not root.
RTSP_DEBS := gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav
BROWSER_DEBS := chromium chromium-driver
BROKER_DEBS := mosquitto
REDIS_DEBS := redis-server
system-deps:
	@missing=$$(for p in $(RTSP_DEBS) $(BROWSER_DEBS) $(BROKER_DEBS) $(REDIS_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "installing Debian packages:" $$missing; \
		$$sudo apt-get update -q && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# The embedded models, reproduced from scratch (hours on a 2-core CPU; re-run to resume).
SYNTH_TRAIN := data/synth-train/annotations.json
SYNTH_VAL := data/synth-val/annotations.json
SYNTH_TEST := data/synth-test/annotations.json
resume = $(if $(wildcard runs/$(1)/checkpoint.pt),--resume)

$(SYNTH_TRAIN): | $(STAMP)
	$(BIN)/detstream synth dataset data/synth-train --seed 1 --count 3000 --size 640x360
$(SYNTH_VAL): | $(STAMP)
	$(BIN)/detstream synth dataset data/synth-val --seed 2 --count 200 --size 640x360
$(SYNTH_TEST): | $(STAMP)
	$(BIN)/detstream synth dataset data/synth-test --seed 3 --count 500 --size 640x360

engines/embedded/faster-compact-synth.pt: configs/train-faster-compact.yaml $(SYNTH_TRAIN) $(SYNTH_VAL)
	$(BIN)/detstream train configs/train-faster-compact.yaml $(call resume,faster-compact)
	cp runs/faster-compact/model.pt $@

# The mask model in two stages: a plain compact Mask R-CNN, then its pixel-reading mask branch.
runs/mask-compact/model.pt: configs/train-mask-compact.yaml engines/embedded/faster-compact-synth.pt
	$(BIN)/detstream train configs/train-mask-compact.yaml $(call resume,mask-compact)

engines/embedded/mask-compact-synth.pt: configs/train-mask-compact-px.yaml runs/mask-compact/model.pt
	$(BIN)/detstream train configs/train-mask-compact-px.yaml $(call resume,mask-compact-px)
	cp runs/mask-compact-px/model.pt $@

models: engines/embedded/faster-compact-synth.pt engines/embedded/mask-compact-synth.pt $(SYNTH_TEST)
	$(BIN)/detstream eval --model engines/embedded/faster-compact-synth.pt --data $(SYNTH_TEST) --out runs/eval-faster.json
	$(BIN)/detstream eval --model engines/embedded/mask-compact-synth.pt --data $(SYNTH_TEST) --out runs/eval-mask.json

# All benchmarks in one run (budgeted for under 10 minutes on 2 quiet cores, plus about 7 for the tracking
# section's 32 pipeline runs): writes bench/results.json and
# renders BENCHMARKS.md from it. BENCH_ARGS for e.g. --quick, --only decode,engines, --note TEXT.
bench: $(STAMP) $(DEMO_VIDEO) bench-deps system-deps
	$(BIN)/python -m bench.run_all --video $(DEMO_VIDEO) $(BENCH_ARGS)

# The R-CNN ladder's own models (issue #19), reproduced (re-run to resume): all on one training
# set, each starting from the Faster R-CNN's backbone. Order-only prerequisites: a fresh
# clone's timestamps must not make the committed models look stale.
SYNTH_FAST := data/synth-fast/annotations.json
LADDER_MODELS := engines/embedded/rcnn-synth.pt engines/embedded/fast-rcnn-synth.pt \
	engines/embedded/fast-rcnn-align-synth.pt engines/embedded/retinanet-compact-synth.pt
$(SYNTH_FAST): | $(STAMP)
	$(BIN)/detstream synth dataset data/synth-fast --seed 1 --count 1200 --size 640x360
engines/embedded/fast-rcnn-synth.pt: | $(SYNTH_FAST) $(SYNTH_VAL)
	$(BIN)/detstream train configs/train-fast-rcnn.yaml $(call resume,fast-rcnn)
	cp runs/fast-rcnn/model.pt $@
engines/embedded/fast-rcnn-align-synth.pt: | $(SYNTH_FAST) $(SYNTH_VAL)
	$(BIN)/detstream train configs/train-fast-rcnn-align.yaml $(call resume,fast-rcnn-align)
	cp runs/fast-rcnn-align/model.pt $@
engines/embedded/rcnn-synth.pt: | $(SYNTH_FAST) $(SYNTH_VAL)
	$(BIN)/detstream train configs/train-rcnn.yaml $(call resume,rcnn)
	cp runs/rcnn/model.pt $@
engines/embedded/retinanet-compact-synth.pt: | $(SYNTH_FAST) $(SYNTH_VAL)
	$(BIN)/detstream train configs/train-retinanet-compact.yaml $(call resume,retinanet-compact)
	cp runs/retinanet-compact/model.pt $@
ladder-models: $(LADDER_MODELS)

# The R-CNN ladder (issue #19): every rung on the held-out split, BENCHMARKS.md section 13
# (bench/ladder.py; R-CNN alone takes seconds an image). The rungs' models are committed;
# `make ladder-models` trains the ones that are missing.
ladder: $(STAMP) $(DEMO_VIDEO) $(SYNTH_TEST)
	$(BIN)/python -m bench.run_all --video $(DEMO_VIDEO) --only ladder $(BENCH_ARGS)

# ONNX Runtime fp32 against int8 (Q/DQ) for both embedded models: engine ms, pipeline
# frames/s and mAP on the test split (calibrated on the validation split); on request
int8: $(STAMP) $(DEMO_VIDEO) $(SYNTH_VAL) $(SYNTH_TEST)
	$(BIN)/python -m bench.run_all --video $(DEMO_VIDEO) --only int8 $(BENCH_ARGS)

# How many 720p/25 fps cameras this machine holds at max_fps 5 with the default model, every
# camera within its latency bound (issue #21; bench/capacity.py): steps of 1, 2, 3, ... RTSP
# test-server cameras, about 1.5 minutes each, until the bound breaks; on request, on a quiet
# machine. BENCHMARKS.md section 15.
capacity: $(STAMP) $(DEMO_VIDEO) system-deps
	$(BIN)/python -m bench.run_all --video $(DEMO_VIDEO) --only capacity $(BENCH_ARGS)

# The soak (docs/soak.md): one real `detstream run` for MINUTES under combined faults (cameras
# killed, stalled, a wrong password, Redis restarted, cameras added and removed), sampled every
# 5 s; curves, CSV and a verdict in runs/soak-<timestamp>/; exit 0 iff the verdict passes.
# SOAK_ARGS for e.g. --seed 2, --fault-every 60, --out DIR.
MINUTES ?= 30
SOAK_ARGS ?=
.PHONY: soak
soak: $(STAMP) system-deps
	$(BIN)/python -m bench.soak --minutes $(MINUTES) $(SOAK_ARGS)

# The ffmpeg CLI, the decode benchmark's reference; installed only when missing.
.PHONY: bench-deps
bench-deps:
	@dpkg -s ffmpeg >/dev/null 2>&1 || { \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "installing Debian package: ffmpeg"; \
		$$sudo apt-get update -q && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg; }

# On a machine with an NVIDIA GPU and TensorRT (pip install '.[tensorrt]'): builds fp32 (TF32 off),
# fp16 and int8 plans of both embedded models and holds them against ONNX Runtime (parity both
# ways, a batch of 10, black frames, a foreign plan, latency per precision and batch), writing
# gpu-check.json (docs/tensorrt.md). Without CUDA / TensorRT it says so and stops.
GPU_CHECK_ARGS ?=
.PHONY: gpu-check
gpu-check: $(STAMP) $(SYNTH_VAL)
	$(BIN)/python -m engines.gpu_check --calibration $(SYNTH_VAL) --out gpu-check.json $(GPU_CHECK_ARGS)

clean:
	rm -rf out data/demo.mp4 data/demo.json .pytest_cache
