#!/usr/bin/env python3
"""Summarizes the JSON lines of store.sh / api.sh into markdown tables (medians over reps).

    python3 scripts/bench/summarize.py store results.jsonl
    python3 scripts/bench/summarize.py api results.jsonl
"""
import json
import statistics
import sys
from collections import OrderedDict


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


def store(lines):
    groups = OrderedDict()
    for l in lines:
        groups.setdefault(l["label"], {}).setdefault(l["rep"], {})[l["result"]["backend"]] = l
    print("| workload | reps | SQLite ops/s | etcd ops/s | ops/s ratio (SQLite/etcd) | SQLite p50 / p99 ms | etcd p50 / p99 ms | p99 ratio | fsyncs/commit (SQLite) | loadavg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ranges = []
    for label, reps in groups.items():
        pairs = [r for r in reps.values() if "sqlite" in r and "etcd" in r]
        s = [p["sqlite"]["result"] for p in pairs]
        e = [p["etcd"]["result"] for p in pairs]
        ratio = med([a["ops_per_s"] / b["ops_per_s"] for a, b in zip(s, e)])
        p99r = med([a["latency"]["p99_ms"] / b["latency"]["p99_ms"] for a, b in zip(s, e)])
        fs = med([a["fsyncs"] / a["commits"] for a in s if a.get("commits")])
        loads = [p[b]["loadavg"] for p in pairs for b in ("sqlite", "etcd")]
        print(f"| {label} | {len(pairs)} | {med([a['ops_per_s'] for a in s])} | {med([b['ops_per_s'] for b in e])} | "
              f"**{ratio}** | {med([a['latency']['p50_ms'] for a in s])} / {med([a['latency']['p99_ms'] for a in s])} | "
              f"{med([b['latency']['p50_ms'] for b in e])} / {med([b['latency']['p99_ms'] for b in e])} | {p99r} | {fs} | "
              f"{min(loads)}–{max(loads)} |")
        if all("range" in a for a in s + e) and pairs:
            rr = med([a["range"]["median_ms"] / b["range"]["median_ms"] for a, b in zip(s, e)])
            ranges.append((s[0]["range"]["keys"], med([a["range"]["median_ms"] for a in s]),
                           med([b["range"]["median_ms"] for b in e]), rr, len(pairs)))
    if ranges:
        print()
        print("| range of the whole prefix, pages of 500 | reps | SQLite ms | etcd ms | time ratio (SQLite/etcd, lower is better) |")
        print("|---|---|---|---|---|")
        for keys, a, b, r, n in ranges:
            print(f"| {keys} keys | {n} | {a} | {b} | **{r}** |")


def api(lines):
    groups = OrderedDict()
    for l in lines:
        groups.setdefault(l["label"], []).append(l)
    for label, ls in groups.items():
        rs = [l["result"] for l in ls]
        kind = rs[0].get("bench")
        loads = f"loadavg {min(l['loadavg'] for l in ls)}–{max(l['loadavg'] for l in ls)}"
        if kind == "api-create":
            print(f"- {label}: n={len(rs)} ops/s {med([r['ops_per_s'] for r in rs])}, p50 {med([r['latency']['p50_ms'] for r in rs])} ms, "
                  f"p99 {med([r['latency']['p99_ms'] for r in rs])} ms (worst run {max(r['latency']['p99_ms'] for r in rs)}), "
                  f"max {max(r['latency']['max_ms'] for r in rs)} ms, errors {sum(r['errors'] for r in rs)}; {loads}")
        elif kind == "api-watch":
            print(f"- {label}: n={len(rs)} delivered {[r['delivered'] for r in rs]} of {rs[0]['expected']}, "
                  f"p50 {med([r['delivery_latency']['p50_ms'] for r in rs])} ms, p99 {med([r['delivery_latency']['p99_ms'] for r in rs])} ms, "
                  f"max {max(r['delivery_latency']['max_ms'] for r in rs)} ms; create p50 {med([r['create_latency']['p50_ms'] for r in rs])} ms; {loads}")
        elif kind == "api-list":
            r = rs[0]
            print(f"- {label}: {r['items']} items in {r.get('pages', 1)} page(s), {r['bytes']} bytes, median {r['median_ms']} ms (min {r['min_ms']}, max {r['max_ms']}, {r['repeat']} runs); {loads}")
        else:
            print(f"- {label}: {json.dumps(rs[0])}; {loads}")


def main():
    kind, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    {"store": store, "api": api}[kind](lines)


if __name__ == "__main__":
    main()
