#!/usr/bin/env python3
"""Analysis for spawn_storm.sh: matches each spawned child to the fork, exec and
exit events the monitor printed (by PID and by time window, since PIDs are
reused), and prints the figures."""
import json
import re
import statistics
import sys
from pathlib import Path


def load_workers(work, tag):
    spawns = []
    for part in ("w1", "w2"):
        lines = (work / f"{tag}.{part}").read_text().split("\n")
        worker = int(lines[0].split()[1])
        for line in lines[1:]:
            if line.strip():
                pid, t0, t1 = map(int, line.split())
                spawns.append((worker, pid, t0, t1))
    return spawns


def main():
    work = Path(sys.argv[1])
    hz = int(sys.argv[2])
    rounds = [r.split() for r in sys.argv[3:]]
    all_ok, all_total = 0, 0
    slowdowns, cpu_per_k, p50s, p99s = [], [], [], []
    for rnd, base_s, mon_s, cpu_ticks in rounds:
        base_s, mon_s, cpu_ticks = float(base_s), float(mon_s), int(cpu_ticks)
        spawns = load_workers(work, f"mon{rnd}")
        forks, execs, exits = {}, {}, {}
        n_events, losses = 0, []
        exec_read, exec_missing = 0, {}
        with open(work / f"mon{rnd}.jsonl") as f:
            for line in f:
                n_events += 1
                ev = json.loads(line)
                kind = ev["kind"]
                if kind == "fork" and ev["fork_kind"] == "process":
                    forks.setdefault((ev["parent_pid"], ev["pid"]), []).append(ev["time_ns"])
                elif kind == "exec":
                    execs.setdefault(ev["pid"], []).append(ev["time_ns"])
                    if ev.get("exe", "") and ev["exe"].endswith("/storm-true"):
                        exec_read += 1
                    elif ev.get("missing"):
                        exec_missing[ev["missing"]] = exec_missing.get(ev["missing"], 0) + 1
                elif kind == "exit" and ev["process_ended"]:
                    exits.setdefault(ev["pid"], []).append(ev["time_ns"])
                elif kind == "loss":
                    losses.append(ev)
        ok = 0
        missing = {"fork": 0, "exec": 0, "exit": 0}
        for worker, pid, t0, t1 in spawns:
            # The kernel sends the exit event just after the parent can reap, so
            # allow a little past t1; PIDs come back only after a full turn of
            # pid_max, far longer than this.
            within = lambda ts: any(t0 <= t <= t1 + 100_000_000 for t in ts)
            f = within(forks.get((worker, pid), []))
            e = within(execs.get(pid, []))
            x = within(exits.get(pid, []))
            ok += f and e and x
            missing["fork"] += not f
            missing["exec"] += not e
            missing["exit"] += not x
        total = len(spawns)
        all_ok += ok
        all_total += total
        err = (work / f"mon{rnd}.err").read_text()
        counts = re.search(r"(\d+) events received.*?(\d+) lost in the kernel.*?(\d+) lost in the queue.*?(\d+) missed by this printer.*?(\d+) resyncs", err)
        lat = re.search(r"p50 ([\d.]+) us, p99 ([\d.]+) us", err)
        slowdown = (mon_s - base_s) / base_s * 100
        slowdowns.append(slowdown)
        cpu_s = cpu_ticks / hz
        cpu_per_k.append(cpu_s / (n_events / 1000) * 1000 if n_events else float("nan"))
        if lat:
            p50s.append(float(lat.group(1)))
            p99s.append(float(lat.group(2)))
        print(f"round {rnd}: {total} spawns; fork+exec+exit all seen for {ok} ({ok / total * 100:.3f}%)"
              f"; missing fork {missing['fork']}, exec {missing['exec']}, exit {missing['exit']}")
        print(f"  exec details read from /proc for {exec_read} storm execs ({exec_read / total * 100:.1f}%); marked missing (machine-wide): {exec_missing}")
        print(f"  sensor: {counts.group(0) if counts else err.strip()}")
        print(f"  loss events in the stream: {len(losses)} (counts: {[l.get('count') for l in losses][:10]})")
        print(f"  spawn rate: {total / base_s:.0f}/s without monitor, {total / mon_s:.0f}/s with: slowdown {slowdown:+.1f}%")
        print(f"  monitor CPU: {cpu_s:.2f}s for {n_events} events printed = {cpu_per_k[-1]:.1f} ms per 1,000 events")
        if lat:
            print(f"  exec-to-delivery latency: p50 {lat.group(1)} us, p99 {lat.group(2)} us")
    print(f"TOTAL: {all_ok}/{all_total} = {all_ok / all_total * 100:.3f}% of spawned processes had fork, exec and exit all seen")
    print(f"TOTAL: spawn-rate slowdown with monitor: median {statistics.median(slowdowns):+.1f}% (rounds: {', '.join(f'{s:+.1f}%' for s in slowdowns)})")
    print(f"TOTAL: monitor CPU per 1,000 events: median {statistics.median(cpu_per_k):.1f} ms")
    if p50s:
        print(f"TOTAL: exec-to-delivery latency: p50 {statistics.median(p50s):.1f} us, p99 {statistics.median(p99s):.1f} us (median over rounds)")


main()
