#!/usr/bin/env bash
# Regenerates the checked-in fixtures (tests/data/ppdet_reference/) and, with --full, the 640x640 /
# 80-class outputs the slow test reads (.ppdet_reference/ at the repository root, git-ignored);
# --full-only makes only those.
# Needs PaddleDetection's venv and source (README.md here): PPDET_PY, PPDET_ROOT.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PPDET_PY="${PPDET_PY:-/work/refenv/ppdet/bin/python}"
export PPDET_ROOT="${PPDET_ROOT:-/work/refenv/PaddleDetection}"
export PYTHONPATH="$PPDET_ROOT"
IMAGE="$ROOT/samples/coco/000000014439.jpg"
FULL_RUN="${1:-}"
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT

run() {  # model size_h size_w classes variant out [original_h original_w]
  local model=$1 h=$2 w=$3 nc=$4 variant=$5 out=$6
  shift 6
  mkdir -p "$out"
  "$PPDET_PY" "$ROOT/tools/ppdet_reference/make_reference.py" --model "$model" --size "$h" "$w" \
    --num-classes "$nc" --variant "$variant" --seed 0 --image "$IMAGE" --out "$out" "$@" >/dev/null 2>"$out.log" \
    || { tail -20 "$out.log"; exit 1; }
  echo "$out: $(cat "$out/meta.json" | tr -d '\n ' | cut -c1-160)"
}

FIXTURES="$ROOT/tests/data/ppdet_reference"
[[ "$FULL_RUN" == "--full-only" ]] || for variant in plain perturbed; do
  for spec in "Mask-RT-DETR-S 128 128 mask_rtdetr_s_128" "PP-YOLOE_seg-S 160 160 ppyoloe_seg_s_160"; do
    read -r model h w name <<<"$spec"
    tmp="$SCRATCH/${name}_$variant"
    mkdir -p "$tmp"
    run "$model" "$h" "$w" 3 "$variant" "$tmp" --original 101 160
    mkdir -p "$FIXTURES/${name}_$variant"
    cp "$tmp/recipe.npz" "$tmp/io.npz" "$tmp/meta.json" "$FIXTURES/${name}_$variant/"
  done
done

if [[ "$FULL_RUN" == "--full" || "$FULL_RUN" == "--full-only" ]]; then
  FULL="${PPDET_REFERENCE_DIR:-$ROOT/.ppdet_reference}"
  for variant in plain perturbed; do
    run Mask-RT-DETR-S 640 640 80 "$variant" "$FULL/mask_rtdetr_s_640_$variant"
    run PP-YOLOE_seg-S 640 640 80 "$variant" "$FULL/ppyoloe_seg_s_640_$variant"
  done
fi
