#!/usr/bin/env bash
# `make demo-story`: every task of `orchestrate launch`, one after another, each reading what an earlier
# step made, on the embedded local default (this machine, two CPU ranks, the tiny model):
#   pretrain -> pull + merge -> finetune (SFT) -> pull + merge -> LoRA -> pull + merge
#   -> predict with the LoRA weights -> export to MindIR -> eval (perplexity on the SFT set)
# Prints each step's time and, at the end, a generation of the LoRA model.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
DEMO_DIR=${DEMO_DIR:-$HOME/.orchestrate/demo}
OUT=${OUT:-$HOME/.orchestrate/demo-story}
SFT=$DEMO_DIR/data/sft.mindrecord
QUESTIONS="[Tell me about the river.##Tell me about the garden.]"

o() { "$BIN/orchestrate" "$@"; }
timings=()
step() {  # step NAME COMMAND...: run it, keep its time
  local name=$1 t0=$SECONDS
  shift
  printf '\n== %s\n' "$name"
  "$@"
  timings+=("$(printf '  %-54s %4d s' "$name" $((SECONDS - t0)))")
}
latest() { o jobs --json | "$BIN/python" -c 'import json, sys; print(json.load(sys.stdin)[0]["job_id"])'; }
launch() {  # launch TASK --set ...: the live view goes to a log; its last lines are shown
  o launch "$@" > "$OUT/launch.log" 2>&1 || { tail -n 40 "$OUT/launch.log"; return 1; }
  grep -E "^note: checkpoint|succeeded" "$OUT/launch.log" | head -n 2 || true
  JOB=$(latest)
}
merge() {  # merge JOB NAME: pull the job's newest checkpoints, merge them into OUT/NAME/merged.ckpt
  o checkpoint pull "$1" --out "$OUT/$2" > /dev/null
  o checkpoint merge "$OUT/$2" --out "$OUT/$2/merged.ckpt" > /dev/null
  echo "$OUT/$2/merged.ckpt"
}

rm -rf "$OUT" && mkdir -p "$OUT"
step "prepare (tokenizer, corpora, datasets)" o demo prepare --out "$DEMO_DIR"
step "pretrain" launch pretrain --set job.train_dataset="$DEMO_DIR/data/pretrain.mindrecord"
step "pull + merge the pretrain checkpoints" merge "$JOB" pretrain
step "finetune (SFT) from the pretrain" launch finetune \
  --set job.load_checkpoint="$OUT/pretrain/merged.ckpt" --set job.train_dataset="$SFT"
step "pull + merge the finetune checkpoints" merge "$JOB" finetune
step "LoRA from the finetune" launch lora \
  --set job.load_checkpoint="$OUT/finetune/merged.ckpt" --set job.train_dataset="$SFT"
step "pull + merge the LoRA checkpoints" merge "$JOB" lora
step "predict with the LoRA weights" launch predict_lora \
  --set job.load_checkpoint="$OUT/lora/merged.ckpt" --set job.tokenizer="$DEMO_DIR/tokenizer" \
  --set job.predict_data="$QUESTIONS" --set job.predict_length=48
PREDICT=$JOB
step "export the finetuned model to MindIR" launch export \
  --set job.load_checkpoint="$OUT/finetune/merged.ckpt" --set job.tokenizer="$DEMO_DIR/tokenizer"
step "eval: perplexity of the finetuned model on the SFT set" launch eval \
  --set job.load_checkpoint="$OUT/finetune/merged.ckpt" --set job.eval_dataset="$SFT"
EVAL=$JOB

printf '\n== the story took\n'
printf '%s\n' "${timings[@]}"
printf '\n== eval\n'
o status "$EVAL" --json | "$BIN/python" -c '
import json, sys
r = json.load(sys.stdin)["result"]
print("loss %.4f, perplexity %.2f over %d tokens" % (r["loss"], r["perplexity"], r["tokens"]))'
printf '\n== a generation of the LoRA model (orchestrate logs %s --rank 0)\n' "$PREDICT"
o logs "$PREDICT" --rank 0 -n 400 | grep "predict: answer" || { echo "no answer in the log" >&2; exit 1; }
