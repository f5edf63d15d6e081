#!/usr/bin/env bash
# The GPU check of issue #16 as one prepared script: on a machine with a real GPU it runs the
# GPU-relevant tests (both kernel families against their float64 references) and the benches,
# and writes everything to one file. Under 8 minutes on a GPU; it also runs on lavapipe (slower,
# a smoke test of the script itself).
#
#   bash bench/device.sh --prepare      # here, once, with the network: packs what the GPU machine
#                                       # lacks into .devtools/ (git-ignored, about 35 MB): the
#                                       # deno binary and this project's npm packages (xz)
#   bash bench/device.sh [RESULTS]      # there: runs everything, writes RESULTS
#                                       # (default: $OUT/device_results.md, else ./device_results.md)
#
# On the device tool: carry [".devtools", ".gl"] (".gl": the Vulkan loader .debs, see the tool's
# README; unpacked here when present) and run `bash bench/device.sh` with timeout_s 540.
# Each step has its own time limit, so one hung step cannot take the whole budget; a step that
# fails is recorded in the results with its exit status and the script goes on.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TOOLS="$ROOT/.devtools"

if [ "${1:-}" = "--prepare" ]; then
  mkdir -p "$TOOLS"
  grep -qx '/.devtools/' .git/info/exclude 2>/dev/null || echo '/.devtools/' >>.git/info/exclude
  xz -T0 -6 -c "$(command -v deno)" >"$TOOLS/deno.xz"
  # zod for everything; TF.js for the matmul and conv2d benches' peer (76 MB, 5 MB packed).
  rm -rf /tmp/stqa_deno_dir
  DENO_DIR=/tmp/stqa_deno_dir deno cache mod.ts cli.ts bench/*.ts >/dev/null
  tar -C /tmp/stqa_deno_dir -cf - npm | xz -T0 -6 >"$TOOLS/deno_npm.tar.xz"
  rm -rf /tmp/stqa_deno_dir
  du -sh "$TOOLS"/* | sed 's/^/prepared: /'
  exit 0
fi

RESULTS="${1:-${OUT:-.}/device_results.md}"
START=$(date +%s)
log() { echo "$*" | tee -a "$RESULTS"; }
: >"$RESULTS"

# Vulkan loader and NVIDIA's ICD (the tool's README: a bare machine may lack the loader).
if ls .gl/*.deb >/dev/null 2>&1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

DENO=$(command -v deno || true)
if [ -z "$DENO" ] && [ -f "$TOOLS/deno.xz" ]; then
  xz -dc "$TOOLS/deno.xz" >/tmp/deno && chmod +x /tmp/deno && DENO=/tmp/deno
fi
if [ -z "$DENO" ]; then
  log "device.sh: no deno on PATH and no .devtools/deno.xz (run bench/device.sh --prepare here first)"
  exit 2
fi
if [ -f "$TOOLS/deno_npm.tar.xz" ]; then
  mkdir -p /tmp/stqa_deno_dir && xz -dc "$TOOLS/deno_npm.tar.xz" | tar -C /tmp/stqa_deno_dir -xf -
  export DENO_DIR=/tmp/stqa_deno_dir
fi
# The Python with PyTorch for the training-step reference: the first that imports torch.
PY=/usr/bin/python3
for p in "$(command -v python3)" /opt/torch/.venv/bin/python3 /usr/bin/python3; do
  if [ -x "$p" ] && "$p" -c "import torch" 2>/dev/null; then PY=$p && break; fi
done

step() { # step <title> <seconds> <command...>
  local title=$1 limit=$2
  shift 2
  log ""
  log "## $title"
  log ""
  log '```'
  local t0=$(date +%s)
  timeout "$limit" "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | tee -a "$RESULTS" >/dev/null
  local rc=${PIPESTATUS[0]}
  log '```'
  log "(exit $rc, $(($(date +%s) - t0)) s)"
}

log "# STQA on a GPU: tests and benches ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
step "nvidia-smi" 20 nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
step "adapter (deno task info)" 60 "$DENO" run --allow-read --allow-env --allow-run=ffmpeg cli.ts info
step "tests: ops of both kernel families" 150 "$DENO" test --allow-read --allow-write --allow-env \
  --allow-run tests/matmul_test.ts tests/conv2d_test.ts tests/conv_gru_test.ts \
  tests/shape_test.ts tests/stqa_net_test.ts tests/gpu_test.ts
step "bench: peak, matmul and conv2d against TF.js" 150 "$DENO" bench --allow-read --allow-env \
  bench/matmul_bench.ts bench/conv2d_bench.ts
step "bench: training step against PyTorch" 90 "$DENO" bench --allow-read --allow-env \
  --allow-run="$PY" bench/train_step_bench.ts -- --python "$PY"
step "profile: training step" 60 "$DENO" run --allow-read --allow-env bench/profile_train_step.ts
step "generator frames/s (540p, 1080p)" 90 "$DENO" run --allow-read --allow-env \
  bench/generator_fps.ts --sizes 960x540,1920x1080 --frames 16
log ""
log "total $(($(date +%s) - START)) s"
