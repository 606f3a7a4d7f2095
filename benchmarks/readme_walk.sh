#!/usr/bin/env bash
# The README's first-hour steps, in a fresh clone, each one timed: what a new user runs, in order.
#   bash benchmarks/readme_walk.sh [WORK_DIR]      (default: a new folder under /tmp)
# Writes WORK_DIR/times.tsv (step, wall seconds, exit status, load average before/after, command)
# and WORK_DIR/<step>.out (everything the step printed). Needs no network and no dataset: every step
# runs on the built-in synthetic data. benchmarks/results/first_hour.md holds a run's figures.
set -u
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=${1:-$(mktemp -d /tmp/segkit-walk.XXXXXX)}
mkdir -p "$work"
rm -rf "$work/clone" && git clone -q "$repo" "$work/clone" && cd "$work/clone" || exit 1
log=$work/times.tsv
printf 'step\twall_s\trc\tload_before\tload_after\tcommand\n' >"$log"
step() { # step NAME COMMAND: run COMMAND in the clone, time it, keep its output
  local name=$1 cmd=$2 l0 l1 t0 t1 rc
  l0=$(cut -d' ' -f1 /proc/loadavg) t0=$(date +%s.%N)
  # as a user types it: in the venv the README says to activate (absent before the install step)
  bash -c "[ -f .venv/bin/activate ] && source .venv/bin/activate; $cmd" >"$work/$name.out" 2>&1
  rc=$?
  t1=$(date +%s.%N) l1=$(cut -d' ' -f1 /proc/loadavg)
  printf '%s\t%.1f\t%s\t%s\t%s\t%s\n' "$name" "$(echo "$t1 - $t0" | bc)" "$rc" "$l0" "$l1" "$cmd" >>"$log"
  printf '%-9s %7.1f s  exit %s\n' "$name" "$(echo "$t1 - $t0" | bc)" "$rc"
}
py=python  # the activated venv's, as the README says
step install "make .venv/.segkit-installed"
step demo "make demo"
step train "$py scripts/train.py experiment=quickstart model=fcn"
run=$(ls -d logs/quickstart/runs/* | tail -n 1)
step evaluate "$py scripts/evaluate.py ckpt_path=$run/checkpoints/best.ckpt"
step sweep "$py scripts/train.py -m +sweep=design +sweep/backbones=mobilenetv2 model.output_stride=16"
sweep=$(ls -d logs/sweep_design/multiruns/* | tail -n 1)
step compare "$py scripts/compare.py $sweep --fill"
step inspect "$py scripts/inspect_data.py data=synthetic inspect.json=stats.json"
step analyze "$py scripts/analyze.py model=deeplabv3plus backbone=mobilenetv2 model.output_stride=16 analyze.input_size=513"
step onnx "pip install --quiet -e '.[onnx]'"
step export "$py scripts/export.py ckpt_path=$run/checkpoints/best.ckpt format=onnx"
mkdir -p "$work/inputs" && cp $(ls data/synthetic/*/VOCdevkit/VOC2012/JPEGImages/*.jpg | head -n 20) "$work/inputs/"
step predict "$py scripts/predict.py ckpt_path=$run/checkpoints/best.ckpt input=$work/inputs output=$work/predictions"
step help "$py scripts/train.py --help"
echo "times: $log"
