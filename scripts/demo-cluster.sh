#!/usr/bin/env bash
# `make demo-cluster`: the demo's tiny pretrain on a simulated 2-node cluster (root), one rank killed.
#
# Builds the cluster, plans and launches the job with one automatic restart allowed, kills rank 1 once
# it has passed its first checkpoint, follows the job through the failure (the killed rank named as
# the cause) and the restart (resuming from the newest step both ranks saved) to the end, collects the
# logs (INDEX.md, loss.png) and removes the cluster, also when interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
NAME=${NAME:-demo}
DEMO_DIR=${DEMO_DIR:-$HOME/.orchestrate/demo}
OUT=${OUT:-$HOME/.orchestrate/demo-cluster}
KILL_AFTER_STEP=${KILL_AFTER_STEP:-130}   # past the first checkpoint (step 100)
orchestrate() { "$BIN/orchestrate" "$@"; }
say() { printf '\n== %s\n' "$*"; }
# Long waits run as a child that the shell `wait`s for: a signal then interrupts the wait at once
# (a shell only runs its traps between foreground commands), and cleanup ends the child. `<&0` keeps
# stdin (a background command would get /dev/null).
child=""
run() { local rc=0; "$@" <&0 & child=$!; wait "$child" || rc=$?; child=""; return "$rc"; }

[ "$(id -u)" -eq 0 ] || { echo "make demo-cluster needs root (network namespaces, sshd)" >&2; exit 1; }
cleanup() {
  status=$?
  trap - EXIT INT TERM
  if [ -n "$child" ]; then kill "$child" 2>/dev/null || true; fi
  if [ -n "${JOB:-}" ]; then orchestrate stop "$JOB" >/dev/null 2>&1 || true; fi
  say "removing the simulated cluster"
  orchestrate sim down --name "$NAME" || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building a 2-node simulated cluster (own netns, hostname, sshd, work folder each)"
orchestrate sim up --nodes 2 --devices 1 --name "$NAME"
INVENTORY=/var/lib/orchestrate-sim/$NAME/inventory.yaml

say "preparing the demo's tokenizer, corpus and dataset"
DATA=$(orchestrate demo prepare --out "$DEMO_DIR")

say "planning the tiny pretrain: one rank per node, data parallel"
rm -rf "$OUT" && mkdir -p "$OUT"
orchestrate plan "$INVENTORY" --task pretrain --out "$OUT/plan" \
  --set job.model=tiny --set model.vocab_size=400 --set job.train_dataset="$DATA" \
  --set job.learning_rate=0.005 --set job.lr_end=0.0005 --set job.warmup_steps=10 \
  --set job.total_steps=480 --set job.save_checkpoint_steps=100 >/dev/null
echo "plan written to $OUT/plan (summary.txt, rank table, per-node YAML and env)"

say "launching with --max-restarts 1"
orchestrate launch pretrain --plan "$OUT/plan" --max-restarts 1 --detach
JOB=$(orchestrate jobs --json | "$BIN/python" -c 'import json, sys; print(json.load(sys.stdin)[0]["job_id"])')

say "waiting for rank 1 to pass step $KILL_AFTER_STEP, then killing it"
run "$BIN/python" - "$JOB" "$KILL_AFTER_STEP" "$INVENTORY" > "$OUT/kill-target" <<'PY'
import json, subprocess, sys, time
import yaml
job, after = sys.argv[1], int(sys.argv[2])
names = {n["host"]: n["name"] for n in yaml.safe_load(open(sys.argv[3]))["nodes"]}
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    st = json.loads(subprocess.run([".venv/bin/orchestrate", "status", job, "--json"], capture_output=True,
                                   text=True, check=True).stdout)
    ranks = [r for n in st["nodes"] for r in n["ranks"] if r["rank"] == 1]
    if st["state"] in ("succeeded", "failed", "stopped"):
        sys.exit(f"the job ended ({st['state']}) before rank 1 reached step {after}")
    if ranks and ranks[0]["progress"] and ranks[0]["progress"]["step"] >= after and ranks[0]["pid"]:
        print(names[ranks[0]["host"]], ranks[0]["host"], ranks[0]["pid"])
        sys.exit(0)
    time.sleep(1)
sys.exit("rank 1 did not reach the step in time")
PY
read -r NODE HOST PID < "$OUT/kill-target"
echo "rank 1 runs on $NODE ($HOST) as pid $PID: kill -9"
orchestrate sim exec --name "$NAME" "$NODE" -- kill -9 "$PID"

say "the failure: every rank stopped, the killed one named, logs collected, a restart decided"
run "$BIN/python" - "$JOB" <<'PY'
import json, subprocess, sys, time
job = sys.argv[1]
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    st = json.loads(subprocess.run([".venv/bin/orchestrate", "status", job, "--json"], capture_output=True,
                                   text=True, check=True).stdout)
    if st["attempt"] > 1 or st["state"] in ("failed", "stopped"):
        break
    time.sleep(0.5)
index = st.get("logs_index")
if index:
    text = open(index).read()
    cause = text[text.index("## Root cause"):text.index("## Processes")].split("```")[0]
    print("\n".join(line for line in cause.splitlines() if line.strip()))
    print(f"(the failed attempt's logs: {index})")
print(f"now: attempt {st['attempt']}/{st['max_attempts']}, resumed from step {st['resumed_from']}")
PY

say "following the restarted job to the end"
run "$BIN/orchestrate" status "$JOB" --watch

say "collecting the logs of every node"
run "$BIN/orchestrate" collect-logs "$JOB" --out "$OUT/logs"
INDEX=$(find "$OUT/logs" -name INDEX.md | head -n 1)
sed -n '1,25p' "$INDEX"
find "$OUT/logs" -name loss.png
orchestrate demo summary "$JOB"
