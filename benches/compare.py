#!/usr/bin/env python3
"""Side-by-side benchmarks: ours against Go, Erlang, tokio, may and rayon.

    python3 benches/compare.py            # full run: writes benches/RESULTS.md and benches/ratios.svg
    python3 benches/compare.py --quick    # 1/10 size, one run each: checks results, judges nothing
    python3 benches/compare.py --cases skynet,parked
    python3 benches/compare.py --cases dist_rtt,dist_rtt@1 --out /tmp/dist.md   # a table of its own
    python3 benches/compare.py --append-analysis   # re-append ANALYSIS.md to RESULTS.md, run nothing

Installs the peers' toolchains if missing (Go 1.23 from bookworm-backports,
Debian's erlang-base), builds everything in release, then for every case runs a
warm-up of each program and 5 timed runs, interleaved (ours, Go, Erlang,
tokio, may, ours, ...). Each program prints one line per figure; the runner
takes the case's metric from it and the peak RSS from the kernel (wait4).
A program that cannot run a case exits non-zero: it is recorded as DNF with
its last line of error output.
"""

import argparse
import glob
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "target", "peers")
RUN_TIMEOUT_S = 60
RUN_TIMEOUT_QUICK_S = 20
ROUNDS = 5

# name, case, line filter, metric, unit, targets, peers.
#
# A target is one of the "must show" bounds, each read off this table:
#   ("peer", P, b)      our median / P's median <= b; P = "best" is the best peer
#   ("faster", R, b)    our median in row R / ours here >= b (two workers vs one)
#   ("slower", R, b)    ours here / our median in row R <= b
#   ("rss", P, b)       our peak RSS / P's peak RSS <= b
#   ("max", b)          our median <= b (absolute, in the row's unit)
#   ("below", b)        our median < b (absolute)
PEERS_ALL = ["go", "erlang", "tokio", "may"]
ROWS = [
    ("B1 ping-pong 1w", "ping_pong_1w", "", "rtt_ns", "ns", [("peer", "best", 0.5)], PEERS_ALL),
    ("B1 ping-pong 2w", "ping_pong_2w", "", "rtt_ns", "ns", [("peer", "best", 1.0)], PEERS_ALL),
    ("B1 ping-pong 2w, pair apart", "ping_pong_2w_cross", "", "rtt_ns", "ns", [], PEERS_ALL),
    ("B2 counting 1w", "counting_1w", "", "per_msg_ns", "ns", [("peer", "go", 1.0)], PEERS_ALL),
    ("B2 counting 2w", "counting_2w", "", "per_msg_ns", "ns", [("peer", "go", 1.0)], PEERS_ALL),
    ("B3 ring 100, 1w", "ring_100", "", "per_hop_ns", "ns", [("peer", "go", 0.8)], PEERS_ALL),
    ("B3 ring 10,000, 1w", "ring_10000", "", "per_hop_ns", "ns", [("peer", "go", 0.8), ("peer", "best", 1.0)], PEERS_ALL),
    ("B3 ring 100, 2w", "ring_100_2w", "", "per_hop_ns", "ns", [("slower", "B3 ring 100, 1w", 1.3)], PEERS_ALL),
    ("B4 skynet 2w", "skynet", "", "wall_ms", "ms", [("peer", "go", 0.7), ("rss", "go", 2.0)], PEERS_ALL),
    ("B5 1M parked, spawn (cold)", "parked", "cold", "spawn_ns_per_agent", "ns", [("peer", "erlang", 1.0), ("peer", "erlang", 0.5)], PEERS_ALL),
    ("B5 1M parked, spawn (warm)", "parked", "warm", "spawn_ns_per_agent", "ns", [], PEERS_ALL),
    ("B5 1M parked, RSS per agent", "parked", "cold", "rss_bytes_per_agent", "B", [("max", 6 * 1024)], PEERS_ALL),
    ("B5 1M parked, mappings", "parked", "cold", "maps", "maps", [("below", 1000)], []),
    ("B5 1M hibernated, RSS per agent", "hibernated", "", "rss_bytes_per_agent", "B", [("max", 2.7 * 1024), ("peer", "erlang", 1.0)], ["erlang"]),
    ("B5 1M hibernated, mappings", "hibernated", "", "maps", "maps", [("below", 1000)], []),
    ("B5 1M hibernated, time to hibernate", "hibernated", "", "hibernate_ns_per_agent", "ns", [], ["erlang"]),
    ("B5 1M hibernated, wake-up and finish", "hibernated", "", "wake_ns_per_agent", "ns", [], ["erlang"]),
    ("B6 churn 1w", "churn_1w", "", "per_agent_ns", "ns", [("peer", "best", 1.0)], PEERS_ALL),
    ("B6 churn 2w", "churn_2w", "", "per_agent_ns", "ns", [("peer", "best", 1.0)], PEERS_ALL),
    ("B7 chameneos 1w", "chameneos_1w", "", "total_ms", "ms", [("peer", "go", 1.0), ("peer", "erlang", 0.5)], ["go", "erlang", "tokio"]),
    ("B7 chameneos 2w", "chameneos_2w", "", "total_ms", "ms",
     [("peer", "go", 1.0), ("peer", "erlang", 0.5), ("faster", "B7 chameneos 1w", 1.5)], ["go", "erlang", "tokio"]),
    ("B7 big 1w", "big_1w", "", "total_ms", "ms", [("peer", "go", 1.0), ("peer", "erlang", 0.5)], ["go", "erlang", "tokio"]),
    ("B7 big 2w", "big_2w", "", "total_ms", "ms",
     [("peer", "go", 1.0), ("peer", "erlang", 0.5), ("faster", "B7 big 1w", 1.5)], ["go", "erlang", "tokio"]),
    # B8 and B12 across nodes run twice: each node with 2 workers (Erlang: +S 2, its default
    # here), and each with 1 ("@1": our ERLANGEN_BENCH_NODE_WORKERS=1, Erlang's +S 1:1).
    ("B8 distribution, round trip", "dist_rtt", "", "rtt_us", "µs", [("peer", "erlang", 0.5)], ["erlang"]),
    ("B8 distribution, round trip: raw TCP between two threads, busy-polling (the floor)", "dist_rtt", "", "raw_busy_rtt_us", "µs", [], []),
    ("B8 distribution, round trip: raw TCP between two threads, blocking reads", "dist_rtt", "", "raw_blocking_rtt_us", "µs", [], []),
    ("B8 distribution, round trip, p50", "dist_rtt", "", "p50_us", "µs", [], ["erlang"]),
    ("B8 distribution, round trip, p99", "dist_rtt", "", "p99_us", "µs", [], ["erlang"]),
    ("B8 distribution, round trip, p999", "dist_rtt", "", "p999_us", "µs", [], ["erlang"]),
    # Both nodes on TLS (issue 23), beside the plain round trip above; Erlang's row is
    # its plain distribution (its inet_tls is not set up here).
    ("B8 distribution, round trip over TLS", "dist_rtt_tls", "", "rtt_us", "µs", [], []),
    ("B8 distribution, round trip over TLS, p99", "dist_rtt_tls", "", "p99_us", "µs", [], []),
    ("B8 distribution, round trip, 1 per node", "dist_rtt@1", "", "rtt_us", "µs", [("peer", "erlang", 0.5)], ["erlang"]),
    ("B8 distribution, round trip, 1 per node, p50", "dist_rtt@1", "", "p50_us", "µs", [], ["erlang"]),
    ("B8 distribution, round trip, 1 per node, p99", "dist_rtt@1", "", "p99_us", "µs", [], ["erlang"]),
    ("B8 distribution, round trip, 1 per node, p999", "dist_rtt@1", "", "p999_us", "µs", [], ["erlang"]),
    ("B8 distribution, one way, 1 sender", "dist_oneway_1", "", "per_msg_ns", "ns", [("peer", "erlang", 0.2)], ["erlang"]),
    ("B8 distribution, one way, 1 sender, 1 per node", "dist_oneway_1@1", "", "per_msg_ns", "ns", [("peer", "erlang", 0.2)], ["erlang"]),
    ("B8 distribution, one way, 8 senders", "dist_oneway_8", "", "per_msg_ns", "ns", [("peer", "erlang", 0.2)], ["erlang"]),
    ("B8 distribution, one way, 8 senders, 1 per node", "dist_oneway_8@1", "", "per_msg_ns", "ns", [("peer", "erlang", 0.2)], ["erlang"]),
    # Bulk rows are MB/s: higher is better, so their ratio reads the other way.
    ("B8 bulk, 1 MiB messages, MB/s", "dist_bulk_1m", "", "mb_s", "MB/s", [], ["erlang"]),
    ("B8 bulk, 1 MiB messages, raw TCP copy, MB/s", "dist_bulk_1m", "", "raw_tcp_mb_s", "MB/s", [], []),
    ("B8 bulk, 64 MiB messages, MB/s", "dist_bulk_64m", "", "mb_s", "MB/s", [], ["erlang"]),
    ("B8 bulk, 64 MiB messages, raw TCP copy, MB/s", "dist_bulk_64m", "", "raw_tcp_mb_s", "MB/s", [], []),
    ("B8 head-of-line: ping p99 while 64 MiB messages stream, µs", "dist_hol", "", "busy_p99_us", "µs", [("slower", "B8 head-of-line: ping p99 idle, µs", 10.0)], ["erlang"]),
    ("B8 head-of-line: ping p50 while 64 MiB messages stream, µs", "dist_hol", "", "busy_p50_us", "µs", [], ["erlang"]),
    ("B8 head-of-line: ping p99 idle, µs", "dist_hol", "", "idle_p99_us", "µs", [], ["erlang"]),
    # With a real Erlang node (issue 22): ours to erl, beside Erlang's erl to erl (its B8).
    ("B8 with an Erlang node: round trip, ours↔erl (Erlang: erl↔erl)", "erl_rtt", "", "rtt_us", "µs", [("peer", "erlang", 1.0)], ["erlang"]),
    ("B8 with an Erlang node: round trip p99, ours↔erl (Erlang: erl↔erl)", "erl_rtt", "", "p99_us", "µs", [], ["erlang"]),
    ("B8 with an Erlang node: one way, 1 sender, ours→erl (Erlang: erl→erl)", "erl_oneway_1", "", "per_msg_ns", "ns", [("peer", "erlang", 1.0)], ["erlang"]),
    # What a cluster costs (issue 23): 16 nodes meshed through one, each its own process with
    # its defaults (ours: a worker per core; Erlang: a scheduler per core, connect_all).
    ("B13 cluster of 16: memory per node", "cluster_mesh", "", "rss_kib_per_node", "KiB", [], ["erlang"]),
    ("B13 cluster of 16: idle CPU per node (ms of CPU per second)", "cluster_mesh", "", "idle_cpu_ms_per_s", "ms/s", [], ["erlang"]),
    ("B13 cluster of 16: a 17th node joins (until it sees all 16)", "cluster_mesh", "", "join_ms", "ms", [], ["erlang"]),
    ("B13 group send to 1,000 members on 4 nodes, per broadcast (Erlang: pg)", "cluster_group_send", "", "per_broadcast_us", "µs", [], ["erlang"]),
    ("B9 parallel map 2w", "parallel_map", "", "parallel_ms", "ms", [("peer", "rayon", 1.1)], ["rayon"]),
    ("B10 call/reply, empty mailbox", "call_reply", "empty", "per_call_ns", "ns", [], []),
    ("B10 call/reply behind 500,000", "call_reply", "loaded", "per_call_ns", "ns",
     [("slower", "B10 call/reply, empty mailbox", 2.0)], []),
    ("B10 receive_match behind 500,000 (contrast)", "call_reply", "receive_match", "per_call_ns", "ns", [], []),
    ("B12 call to a server, empty mailbox", "gen_call", "empty", "per_call_ns", "ns",
     [("peer", "erlang", 1.0)], ["erlang"]),
    ("B12 call to a server behind 500,000", "gen_call", "loaded", "per_call_ns", "ns",
     [("slower", "B12 call to a server, empty mailbox", 2.0), ("peer", "erlang", 1.0)], ["erlang"]),
    ("B12 call across nodes, empty mailbox", "dist_call", "empty", "per_call_ns", "ns",
     [("peer", "erlang", 1.0)], ["erlang"]),
    ("B12 call across nodes behind 500,000", "dist_call", "loaded", "per_call_ns", "ns",
     [("slower", "B12 call across nodes, empty mailbox", 2.0), ("peer", "erlang", 1.0)], ["erlang"]),
    ("B12 call across nodes, empty mailbox, 1 per node", "dist_call@1", "empty", "per_call_ns", "ns",
     [("peer", "erlang", 1.0)], ["erlang"]),
    ("B11 mixed load, pairs' slowdown during the scans", "mixed_load", "", "pairs_slowdown_scan", "×", [("max", 2.0)], ["go"]),
    ("B11 mixed load, pairs' slowdown over the load", "mixed_load", "", "pairs_slowdown", "×", [("max", 2.0)], ["go"]),
    ("B11 mixed load, 10 ms timeouts late by, p50", "mixed_load", "", "late_p50_us", "µs", [], ["go"]),
    ("B11 mixed load, 10 ms timeouts late by, p99", "mixed_load", "", "late_p99_us", "µs", [("below", 2000)], ["go"]),
    ("B11 mixed load, 10 ms timeouts late by, max", "mixed_load", "", "late_max_us", "µs", [], ["go"]),
    ("B11 mixed load, the scans' time", "mixed_load", "", "scan_ms", "ms", [], ["go"]),
]


def sh(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


# The newest Go this machine's registry has: bookworm's own golang-go is 1.19
# (2022); bookworm-backports carries 1.23, whose timers and scheduler are the
# ones Go users run today (benches/peers/README.md).
GO_BACKPORT = "golang-1.23-go"
GO_BACKPORT_BIN = "/usr/lib/go-1.23/bin/go"
BACKPORTS_LIST = "/etc/apt/sources.list.d/erlangen-bench-backports.list"


def go_tool():
    return GO_BACKPORT_BIN if os.path.exists(GO_BACKPORT_BIN) else "go"


def debian_mirror(codename):
    """The mirror this machine's apt already uses for `codename`'s main
    archive (one-line sources.list or deb822 .sources), or None: the
    backports line names the same mirror, never one of our own choosing."""
    entries = []
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]:
        if path == BACKPORTS_LIST or not (path.endswith(".list") or path.endswith(".sources")):
            continue
        try:
            text = open(path).read()
        except OSError:
            continue
        if path.endswith(".sources"):
            for stanza in text.split("\n\n"):
                fields = dict(
                    line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#")
                )
                uris = fields.get("URIs", "").split()
                suites = fields.get("Suites", "").split()
                entries += [(uri, suite) for uri in uris for suite in suites]
        else:
            for line in text.splitlines():
                words = line.split()
                if not words or words[0] != "deb":
                    continue
                rest = words[1:]
                if rest and rest[0].startswith("["):
                    # Options: `[key=value ...]`, possibly several words.
                    while rest and not rest[0].endswith("]"):
                        rest = rest[1:]
                    rest = rest[1:]
                if len(rest) >= 2:
                    entries.append((rest[0], rest[1]))
    for uri, suite in entries:
        if suite == codename:
            return uri
    return None


def ensure_toolchains():
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    missing = [p for p, tool in (("erlang-base", "erl"),) if shutil.which(tool) is None]
    if not os.path.exists(GO_BACKPORT_BIN):
        missing.append(GO_BACKPORT)
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"missing {missing}: install them (Go from bookworm-backports) and rerun")
    mirror = debian_mirror("bookworm")
    if GO_BACKPORT in missing and mirror is not None:
        with open(BACKPORTS_LIST, "w") as f:
            f.write(f"deb {mirror} bookworm-backports main\n")
    subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
    if GO_BACKPORT in missing:
        missing.remove(GO_BACKPORT)
        got = subprocess.run(["apt-get", "install", "-y", "-q", "-t", "bookworm-backports", GO_BACKPORT], env=env)
        if got.returncode != 0 and shutil.which("go") is None:
            print(f"no {GO_BACKPORT}: falling back to Debian's golang-go", file=sys.stderr)
            missing.append("golang-go")
    if missing:
        sh(["apt-get", "install", "-y", "-q", *missing], env=env)


def build():
    os.makedirs(PEERS, exist_ok=True)
    out = subprocess.run(
        ["cargo", "bench", "--bench", "suite", "--no-run", "--message-format=json"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    ours = None
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "suite" and msg.get("executable"):
            ours = msg["executable"]
    if ours is None:
        sys.exit("could not find the benchmark executable")
    env = dict(os.environ, GOCACHE=os.path.join(PEERS, "gocache"), GOPATH=os.path.join(PEERS, "gopath"),
               HOME=os.environ.get("HOME", "/root"), GO111MODULE="off")
    sh([go_tool(), "build", "-o", os.path.join(PEERS, "go-bench"), "."], cwd=os.path.join(ROOT, "benches/peers/go"), env=env)
    os.makedirs(os.path.join(PEERS, "erlang"), exist_ok=True)
    sh(["erlc", "-o", os.path.join(PEERS, "erlang"), "bench.erl"], cwd=os.path.join(ROOT, "benches/peers/erlang"))
    sh(["cargo", "build", "--release", "--quiet"], cwd=os.path.join(ROOT, "benches/peers/rust"),
       env=dict(os.environ, CARGO_TARGET_DIR=os.path.join(PEERS, "rust")))
    rust = os.path.join(PEERS, "rust", "release")
    return {
        "ours": ours,
        "go": os.path.join(PEERS, "go-bench"),
        "erlang": None,
        "tokio": os.path.join(rust, "tokio-bench"),
        "may": os.path.join(rust, "may-bench"),
        "rayon": os.path.join(rust, "rayon-bench"),
    }


def command(program, binaries, case, quick):
    extra = ["--quick"] if quick else []
    case, _, per_node = case.partition("@")
    if program == "erlang":
        schedulers = "2" if ("2w" in case or case in ("skynet", "parked", "hibernated") or case.startswith(("dist_", "cluster_"))) else "1"
        if per_node:
            schedulers = f"{per_node}:{per_node}"
        return ["erl", "-noshell", "+S", schedulers, "+P", "5000000", "-pa", os.path.join(PEERS, "erlang"),
                "-run", "bench", "main", *(["quick"] if quick else [])]
    return [binaries[program], *extra]


def kill_group(pgid):
    """Kills what is left of a run's process group (nothing, normally)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_once(program, binaries, case, quick):
    """One run: (lines, peak RSS KiB) or raises RuntimeError(why)."""
    cmd = command(program, binaries, case, quick)
    case, _, per_node = case.partition("@")
    env = dict(os.environ, ERLANGEN_BENCH_CASE=case)
    if per_node:
        # Both nodes of a pair: ours read the worker count, Erlang's peer node
        # (started by the driver node) reads ERL_FLAGS.
        env.update(ERLANGEN_BENCH_NODE_WORKERS=per_node, ERL_FLAGS=f"+S {per_node}:{per_node}")
    # A group of its own: a peer it started (an Erlang node, one of ours)
    # that outlives it is killed with it, rather than holding its pipes open
    # and this script with them.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    limit = RUN_TIMEOUT_QUICK_S if quick else RUN_TIMEOUT_S
    deadline = time.time() + limit
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.time() > deadline:
            kill_group(proc.pid)
            os.wait4(proc.pid, 0)
            raise RuntimeError(f"timed out after {limit} s")
        time.sleep(0.01)
    kill_group(proc.pid)
    out, err = proc.stdout.read(), proc.stderr.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        last = [l for l in err.strip().splitlines() if l.strip()]
        why = last[-1] if last else f"exit {code}"
        raise RuntimeError(why.removeprefix("DNF: ")[:200])
    return [l for l in out.splitlines() if l.startswith("B")], usage.ru_maxrss


def metric(lines, line_filter, key):
    for line in lines:
        if line_filter and line_filter not in line:
            continue
        m = re.search(rf"\b{re.escape(key)}=([0-9.]+)", line)
        if m:
            return float(m.group(1))
    raise RuntimeError(f"no {key} in output")


def measure(rows, binaries, quick):
    results = {}  # (case, program) -> {"runs": [(lines, rss)], "error": str}
    cases = []
    for row in rows:
        if row[1] and row[1] not in cases:
            cases.append(row[1])
    for case in cases:
        programs = ["ours"]
        for row in rows:
            if row[1] == case:
                programs += [p for p in row[6] if p not in programs]
        rounds = 1 if quick else ROUNDS + 1
        for r in range(rounds):
            for program in programs:
                slot = results.setdefault((case, program), {"runs": [], "error": None})
                if slot["error"]:
                    continue
                try:
                    lines, rss = run_once(program, binaries, case, quick)
                except RuntimeError as error:
                    slot["error"] = str(error)
                    print(f"{case} {program}: DNF: {error}", file=sys.stderr)
                    continue
                if quick or r > 0:  # the first round is the warm-up
                    slot["runs"].append((lines, rss))
                print(f"{case} {program} round {r}: {lines[0] if lines else ''}", file=sys.stderr)
    return results


def summarize(rows, results):
    table = []
    for name, case, line_filter, key, unit, targets, peers in rows:
        if case is None:
            table.append({"name": name, "pending": True})
            continue
        entry = {"name": name, "unit": unit, "targets": targets, "values": {}, "errors": {}, "rss": {}}
        for program in ["ours", *peers]:
            slot = results.get((case, program))
            if slot is None:
                continue
            if slot["error"] and not slot["runs"]:
                entry["errors"][program] = slot["error"]
                continue
            try:
                values = [metric(lines, line_filter, key) for lines, _ in slot["runs"]]
            except RuntimeError as error:
                entry["errors"][program] = str(error)
                continue
            entry["values"][program] = (statistics.median(values), min(values))
            entry["rss"][program] = max(rss for _, rss in slot["runs"])
        peer_medians = {p: v[0] for p, v in entry["values"].items() if p != "ours"}
        if "ours" in entry["values"] and peer_medians:
            best = min(peer_medians, key=peer_medians.get)
            entry["best"] = best
            entry["ratio"] = entry["values"]["ours"][0] / peer_medians[best] if peer_medians[best] else None
        table.append(entry)
    judge(table)
    return table


def judge(table):
    """Reads each row's targets off the table: entry["verdicts"] = [(text, ok)]."""
    by_name = {e["name"]: e for e in table}

    def median(entry, program):
        value = entry.get("values", {}).get(program) if entry else None
        return value[0] if value else None

    for e in table:
        if e.get("pending"):
            continue
        verdicts = []
        ours = median(e, "ours")
        for target in e["targets"]:
            kind = target[0]
            if kind == "peer":
                peer, bound = target[1], target[2]
                if peer == "best":
                    peer = e.get("best")
                theirs = median(e, peer) if peer else None
                value = ours / theirs if ours is not None and theirs else None
                text, ok = f"≤ {bound}× {'best peer' if target[1] == 'best' else target[1]}", value is not None and value <= bound
                shown = "" if value is None else f"{value:.2f}"
            elif kind in ("faster", "slower"):
                other = median(by_name.get(target[1]), "ours")
                bound = target[2]
                if kind == "faster":
                    value = other / ours if ours and other is not None else None
                    text, ok = f"≥ {bound}× faster than 1w", value is not None and value >= bound
                else:
                    value = ours / other if ours is not None and other else None
                    text, ok = f"≤ {bound}× 1w", value is not None and value <= bound
                shown = "" if value is None else f"{value:.2f}"
            elif kind == "rss":
                peer, bound = target[1], target[2]
                mine, theirs = e["rss"].get("ours"), e["rss"].get(peer)
                value = mine / theirs if mine and theirs else None
                text, ok = f"RSS ≤ {bound}× {peer}", value is not None and value <= bound
                shown = "" if value is None else f"{value:.2f}"
            elif kind == "max":
                bound = target[1]
                text, ok, shown = f"≤ {fmt(bound)}", ours is not None and ours <= bound, ""
            elif kind == "below":
                bound = target[1]
                text, ok, shown = f"< {fmt(bound)}", ours is not None and ours < bound, ""
            else:
                raise ValueError(f"unknown target kind {kind}")
            verdicts.append((f"{text}: {shown} {'✓' if ok else '✗'}".replace(":  ", ": "), ok))
        e["verdicts"] = verdicts


def fmt(v):
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}"


def versions():
    def out(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "unknown"
    lock = os.path.join(ROOT, "benches/peers/rust/Cargo.lock")
    crates = {}
    if os.path.exists(lock):
        text = open(lock).read()
        for crate in ("tokio", "may", "rayon"):
            m = re.search(rf'name = "{crate}"\nversion = "([^"]+)"', text)
            crates[crate] = m.group(1) if m else "?"
    otp = out(["erl", "-noshell", "-eval", 'io:format("~s", [erlang:system_info(otp_release)]), halt().'])
    return {
        "rustc": out(["rustc", "--version"]),
        "go": out([go_tool(), "version"]),
        "erlang": f"OTP {otp}",
        **{k: f"{k} {v}" for k, v in crates.items()},
    }


def machine():
    model = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    maps = open("/proc/sys/vm/max_map_count").read().strip()
    return f"{model}, {os.cpu_count()} vCPUs, {mem:.0f} GiB, Linux {platform.release()}, vm.max_map_count {maps}"


def write_results(table, started, path=None):
    lines = ["# Benchmark results", "",
             "Generated by `python3 benches/compare.py` (do not edit by hand; commentary goes in",
             "`benches/ANALYSIS.md`, which is appended below).", "",
             f"* Date: {started:%Y-%m-%d %H:%M} UTC",
             f"* Machine: {machine()}",
             "* Versions: " + "; ".join(versions().values()),
             f"* Method: per case, a warm-up run of each program, then {ROUNDS} timed runs interleaved",
             "  (ours, Go, Erlang, tokio, may, ours, …). Median and minimum of the timed runs; peak RSS",
             "  is the largest of the runs (wait4). Ratio = our median / the best peer's median (lower",
             "  is better, shown for every row); the targets are the issue's, each with its own",
             "  anchor (Go, Erlang, rayon, the best peer, or our own 1-worker row), read off this table.", "",
             f"**Targets met: {sum(ok for e in table for _, ok in e.get('verdicts', []))} of "
             f"{sum(len(e.get('verdicts', [])) for e in table)}.**", "",
             "| row | unit | ours (median / min) | Go | Erlang | tokio | may | rayon | best peer | ours / best | targets | peak RSS ours / best (MiB) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in table:
        if e.get("pending"):
            lines.append(f"| {e['name']} | | comes with the nodes issue | | | | | | | | | |")
            continue
        cells = []
        for p in ["go", "erlang", "tokio", "may", "rayon"]:
            if p in e["values"]:
                cells.append(fmt(e["values"][p][0]))
            elif p in e["errors"]:
                cells.append(f"DNF ({e['errors'][p]})")
            else:
                cells.append("–")
        ours = e["values"].get("ours")
        ours_s = f"{fmt(ours[0])} / {fmt(ours[1])}" if ours else f"DNF ({e['errors'].get('ours', '?')})"
        ratio = e.get("ratio")
        verdicts = "; ".join(text for text, _ in e.get("verdicts", []))
        best = e.get("best", "–")
        rss = ""
        if "ours" in e["rss"] and best in e["rss"]:
            rss = f"{e['rss']['ours'] / 1024:.0f} / {e['rss'][best] / 1024:.0f}"
        lines.append(f"| {e['name']} | {e['unit']} | {ours_s} | " + " | ".join(cells) +
                     f" | {best} | {'' if ratio is None else f'{ratio:.2f}'} | {verdicts} | {rss} |")
    if path:
        # A partial table of its own (--out): no chart, no analysis.
        open(path, "w").write("\n".join(lines) + "\n")
        return
    lines += ["", "![ratios](ratios.svg)", ""]
    open(os.path.join(ROOT, "benches", "RESULTS.md"), "w").write("\n".join(lines) + "\n")
    append_analysis()


ANALYSIS_MARK = "![ratios](ratios.svg)"


def append_analysis():
    """Replaces whatever follows the chart in RESULTS.md with ANALYSIS.md."""
    results = os.path.join(ROOT, "benches", "RESULTS.md")
    analysis = os.path.join(ROOT, "benches", "ANALYSIS.md")
    text = open(results).read()
    if ANALYSIS_MARK not in text:
        sys.exit("RESULTS.md has no table yet: run the suite first")
    head = text[:text.index(ANALYSIS_MARK) + len(ANALYSIS_MARK)] + "\n\n"
    if os.path.exists(analysis):
        head += open(analysis).read()
    open(results, "w").write(head.rstrip("\n") + "\n")


def write_latency_svg(table):
    """benches/latency.svg: B8's round-trip percentiles, ours and Erlang's, per node size, and
    behind a stream of 64 MiB messages."""
    groups = []
    for size in ["", ", 1 per node"]:
        by_name = {e["name"]: e for e in table if not e.get("pending")}
        bars = []
        for pct in ["p50", "p99", "p999"]:
            e = by_name.get(f"B8 distribution, round trip{size}, {pct}")
            if not e:
                continue
            for program in ["ours", "erlang"]:
                value = e["values"].get(program)
                if value:
                    bars.append((f"{pct} {program}", value[0], program))
        if bars:
            groups.append(("2 workers / +S 2 per node" if not size else "1 worker / +S 1:1 per node", bars))
    # The same ping while another pair streams 64 MiB messages (head-of-line).
    by_name = {e["name"]: e for e in table if not e.get("pending")}
    bars = []
    for label, name in [("idle p99", "B8 head-of-line: ping p99 idle, µs"),
                        ("busy p50", "B8 head-of-line: ping p50 while 64 MiB messages stream, µs"),
                        ("busy p99", "B8 head-of-line: ping p99 while 64 MiB messages stream, µs")]:
        e = by_name.get(name)
        for program in ["ours", "erlang"] if e else []:
            value = e["values"].get(program)
            if value:
                bars.append((f"{label} {program}", value[0], program))
    if bars:
        groups.append(("behind 64 MiB messages, 2 per node", bars))
    if not groups:
        return
    import math
    width, bar_h, left, top = 760, 20, 170, 30
    top_value = max(v for _, bars in groups for _, v, _ in bars)
    decades = max(1, math.ceil(math.log10(max(top_value, 10))))
    px = (width - left - 80) / decades
    rows = sum(len(bars) + 1 for _, bars in groups)
    height = top + bar_h * rows + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="{left}" y="18">B8 round trip between two nodes, µs (log scale; lower is better)</text>']
    y = top
    for title, bars in groups:
        out.append(f'<text x="8" y="{y + 14}" font-weight="bold">{title}</text>')
        y += bar_h
        for label, value, program in bars:
            w = max(1.0, math.log10(max(value, 1.0)) * px)
            colour = "#2a9d5a" if program == "ours" else "#8c6bb1"
            out.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{label}</text>')
            out.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" fill="{colour}"/>')
            out.append(f'<text x="{left + w + 6:.1f}" y="{y + 14}">{fmt(value)}</text>')
            y += bar_h
    out.append("</svg>")
    open(os.path.join(ROOT, "benches", "latency.svg"), "w").write("\n".join(out) + "\n")


def write_svg(table):
    rows = [e for e in table if not e.get("pending") and e.get("ratio") is not None]
    width, bar_h, left, top = 760, 22, 260, 30
    scale_max = max([2.0] + [min(e["ratio"], 8.0) for e in rows])
    px = (width - left - 60) / scale_max
    height = top + bar_h * len(rows) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="{left}" y="18">ours / best peer (lower is better; line = 1.0; red = a target of the row missed)</text>']
    for i, e in enumerate(rows):
        y = top + i * bar_h
        r = min(e["ratio"], 8.0)
        colour = "#2a9d5a" if all(ok for _, ok in e.get("verdicts", [])) else "#d1495b"
        out.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{e["name"]}</text>')
        out.append(f'<rect x="{left}" y="{y + 3}" width="{r * px:.1f}" height="{bar_h - 6}" fill="{colour}"/>')
        out.append(f'<text x="{left + r * px + 4:.1f}" y="{y + 15}">{e["ratio"]:.2f} vs {e["best"]}</text>')
    x1 = left + px
    out.append(f'<line x1="{x1:.1f}" y1="{top}" x2="{x1:.1f}" y2="{top + bar_h * len(rows)}" stroke="black" stroke-dasharray="4 3"/>')
    out.append("</svg>")
    open(os.path.join(ROOT, "benches", "ratios.svg"), "w").write("\n".join(out) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1/10 size, one run each, check results only")
    parser.add_argument("--cases", help="comma-separated case names to run")
    parser.add_argument("--out", help="write the table of --cases to this file (RESULTS.md and the chart stay)")
    parser.add_argument("--append-analysis", action="store_true",
                        help="keep RESULTS.md's table, append the current ANALYSIS.md, run nothing")
    args = parser.parse_args()
    if args.append_analysis:
        append_analysis()
        return
    started = datetime.datetime.now(datetime.timezone.utc)
    ensure_toolchains()
    binaries = build()
    rows = ROWS
    if args.cases:
        wanted = set(args.cases.split(","))
        rows = [r for r in ROWS if r[1] in wanted]
    results = measure(rows, binaries, args.quick)
    table = summarize(rows, results)
    failed = [e["name"] for e in table if not e.get("pending") and "ours" not in e["values"]]
    if args.quick:
        for e in table:
            if not e.get("pending"):
                print(f"{e['name']}: ours {'ok' if 'ours' in e['values'] else 'FAILED'}; peers ok: "
                      f"{sorted(p for p in e['values'] if p != 'ours')}; DNF: {sorted(e['errors'])}")
        if failed:
            sys.exit(f"our side failed: {failed}")
        return
    if args.out:
        # A table of its own: the full run's ratio chart stays as it is; the
        # latency plot is redrawn when the run has its rows.
        write_results(table, started, args.out)
        write_latency_svg(table)
        print(f"wrote {args.out}")
        return
    write_latency_svg(table)
    write_results(table, started)
    write_svg(table)
    print(f"wrote benches/RESULTS.md and benches/ratios.svg in {time.time() - started.timestamp():.0f} s")
    if failed:
        sys.exit(f"our side failed: {failed}")


if __name__ == "__main__":
    main()
