#!/usr/bin/env bash
# benches/ab.sh BASE [HEAD]: the bench suite of two commits, side by side.
#
# Builds `benches/suite.rs` of BASE and of HEAD (default: HEAD) in worktrees
# of their own under target/ab/ (each with its own target directory, kept
# between runs), then runs the chosen cases interleaved: every round runs
# each case once per build, alternating which build goes first, so that
# drift of the machine's speed falls on both. Prints, per figure, the median
# of each side, the ratio HEAD/BASE and the spread.
#
# Every change to the runtime's hot path (send, receive, spawn, schedule,
# wake, timers) runs this against main before it lands, and its closing
# note quotes the output (ARCHITECTURE.md, "Benchmarks").
#
#   AB_RUNS=7 AB_CASES="ping_pong_1w counting_1w" benches/ab.sh be35f86
#
# AB_RUNS (default 5): rounds. AB_CASES (default: B1 1w, B2 1w, B3 ring of
# 100, B4 skynet): case names of the suite (`cargo bench --bench suite`
# lists them as it runs; both commits must have them).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: benches/ab.sh BASE [HEAD]" >&2
    exit 2
fi
root="$(git rev-parse --show-toplevel)"
cd "$root"
base="$(git rev-parse --short=9 "$1^{commit}")"
head="$(git rev-parse --short=9 "${2:-HEAD}^{commit}")"
runs="${AB_RUNS:-5}"
cases="${AB_CASES:-ping_pong_1w counting_1w ring_100 skynet}"
work="$root/target/ab"
mkdir -p "$work"

# Builds the suite of commit $1; prints the path of its binary.
build() {
    local rev="$1" dir="$work/src-$1" target="$work/target-$1"
    if [ ! -d "$dir" ]; then
        git worktree add --detach --force "$dir" "$rev" >/dev/null 2>&1
    fi
    (cd "$dir" && CARGO_TARGET_DIR="$target" cargo bench --bench suite --no-run \
        --message-format=json 2>/dev/null) |
        python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "suite" and m.get("executable"):
        print(m["executable"])
' | tail -n 1
}

echo "building $base (BASE) and $head (HEAD)…" >&2
base_bin="$(build "$base")"
head_bin="$(build "$head")"
for bin in "$base_bin" "$head_bin"; do
    if [ ! -x "$bin" ]; then
        echo "ab.sh: the suite did not build (run cargo bench --no-run in target/ab/src-*)" >&2
        exit 1
    fi
done

python3 - "$base" "$base_bin" "$head" "$head_bin" "$runs" $cases <<'PY'
import os, re, statistics, subprocess, sys

base, base_bin, head, head_bin, runs = sys.argv[1:6]
runs = int(runs)
cases = sys.argv[6:]
sides = [(base, base_bin), (head, head_bin)]
figures = {}  # (case line label, metric) -> {sha: [values]}
order = []

def run(binary, case):
    env = dict(os.environ, ERLANGEN_BENCH_CASE=case)
    out = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.exit(f"ab.sh: case {case} failed on {binary}:\n{out.stderr}")
    return out.stdout

for round_ in range(runs):
    for case in cases:
        turn = sides if round_ % 2 == 0 else sides[::-1]
        for sha, binary in turn:
            for line in run(binary, case).splitlines():
                label = " ".join(w for w in line.split() if "=" not in w)
                for key, value in re.findall(r"(\S+)=([-0-9.]+)\b", line):
                    if key in ("rounds", "n", "agents", "hops", "messages", "sum", "noise"):
                        continue
                    k = (label, key)
                    if k not in figures:
                        figures[k] = {base: [], head: []}
                        order.append(k)
                    figures[k][sha].append(float(value))
    print(f"round {round_ + 1}/{runs} done", file=sys.stderr)

print(f"# benches/ab.sh {base} {head}: {runs} interleaved runs, medians")
print(f"| figure | {base} (BASE) | {head} (HEAD) | HEAD/BASE | spread BASE | spread HEAD |")
print("| --- | --- | --- | --- | --- | --- |")
for k in order:
    b, h = figures[k][base], figures[k][head]
    if not b or not h:
        continue
    mb, mh = statistics.median(b), statistics.median(h)
    ratio = mh / mb if mb else float("nan")
    spread = lambda v: f"{min(v):g}–{max(v):g}"
    print(f"| {k[0]} {k[1]} | {mb:g} | {mh:g} | {ratio:.3f} | {spread(b)} | {spread(h)} |")
PY
