#!/usr/bin/env bash
# Trains clinical-common38's candidates on the lent GPU machine from the kit `scripts/device_kit.py pack`
# made, and leaves each model as $OUT/<name>.tar (float16, under the tool's 16 MiB a file) plus $OUT/train.log.
#
#   device run: command "bash scripts/device_train.sh", carry [".devkit"], timeout_s 420
#   (EPOCHS=30 TIME_LIMIT=300 bash scripts/device_train.sh for a longer run, once the first has shown the pace)
#   dry run here, on the CPU (tiny, to check the plumbing): DRY=1 bash scripts/device_train.sh
#
# Four runs side by side on the one GPU, each with its own augmenting processes (16 cores there): the
# independent-Lite0 recipe of docs/COMMON_CONDITIONS.md for longer than the CPU allowed, at 224 px with three
# seeds (an ensemble of them can be scored and distilled here afterwards) and once at 256 px from the start
# (at 12 epochs on the CPU it gained nothing: try 18).
# No epoch starts that would end past TIME_LIMIT seconds (train --time-limit keeps the best epoch so far), a
# hard stop at RUN_LIMIT catches anything else, and the script then packs whatever finished.
set -uo pipefail
cd "$(dirname "$0")/.."
KIT=${KIT:-.devkit}
OUT=${OUT:-/tmp/device-out}
RUNS=${RUNS:-/tmp/device-runs}
EPOCHS=${EPOCHS:-20}
# The first call must leave time for a second on the 15 device minutes (about 2 go on starting the machine).
TIME_LIMIT=${TIME_LIMIT:-240}
RUN_LIMIT=${RUN_LIMIT:-330}
if [ -z "${PY:-}" ]; then  # the machine's python3 holds torch; here the project's environment does
  PY=python3; [ "${DRY:-0}" = 1 ] && [ -x .venv/bin/python ] && PY=.venv/bin/python
fi
ARCH=${ARCH:-tf_efficientnet_lite0}
mkdir -p "$OUT" "$RUNS"
LOG="$OUT/train.log"
export DERMLENS_WEIGHTS_DIR="$KIT/weights" PYTHONUNBUFFERED=1

device=cuda workers=3 extra=()
if [ "${DRY:-0}" = 1 ]; then
  device=cpu workers=1 EPOCHS=1 extra=(--max-per-class 3 --batch-size 8)
  export OMP_NUM_THREADS=1
else
  export OMP_NUM_THREADS=2
fi
{ echo "== $(date -u +%FT%TZ) $(uname -m), $($PY -c 'import torch; print("torch", torch.__version__,
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")' 2>&1)"; echo "cores: $(nproc --all)"; } >>"$LOG"

common=(--dataset fitz-dermnet --data-root "$KIT/data" --splits "$KIT/weights/clinical-common38"
        --init-from "$KIT/weights/clinical-fitz21-lite0" --architecture "$ARCH"
        --mask-box 0 0.64 0.46 1 --epochs "$EPOCHS" --patience "$EPOCHS" --warmup-epochs 1
        --mixup 0.2 --cutmix 1.0 --mix-prob 0.5 --time-limit "$TIME_LIMIT" --device "$device" --workers "$workers" --no-resume "${extra[@]}")

start() {  # start NAME ARGS...: one training run in the background, its output in the shared log
  local name=$1; shift
  timeout "$RUN_LIMIT" "$PY" -m dermlib train "${common[@]}" --out "$RUNS/$name" --run-dir "$RUNS/$name-run" \
    --model-id "gpu-$name" "$@" >"$RUNS/$name.log" 2>&1 &
}
start l0-224-s1 --seed 1
start l0-224-s2 --seed 2
start l0-224-s3 --seed 3
start l0-256-s1 --seed 1 --img-size 256
wait

for folder in "$RUNS"/*/; do
  name=$(basename "$folder")
  case "$name" in *-run) continue ;; esac
  # Progress bars are carriage-return updates: keep the lines that say something.
  { echo "== $name"; tr '\r' '\n' <"$RUNS/$name.log" | grep -v -E '%\||^[[:space:]]*$' | tail -n 40; } >>"$LOG"
  if [ -f "$folder/card.json" ] && [ -f "$folder/model.safetensors" ]; then
    "$PY" -c "import sys; from dermlib.train.finalize import store_weights; store_weights(sys.argv[1], 'float16')" \
      "$folder" >>"$LOG" 2>&1 \
      && tar -cf "$OUT/$name.tar" -C "$folder" model.safetensors card.json args.json metrics.csv 2>>"$LOG" \
      && echo "packed $name: $(du -h "$OUT/$name.tar" | cut -f1)" >>"$LOG"
  else
    echo "no model from $name (stopped at its limit or failed; its log is above)" >>"$LOG"
  fi
done
ls -la "$OUT" >>"$LOG"
cat "$LOG"
