"""Turns bench/out/shield.txt (bench/shield.sh) into bench/shield.md, the section bench/report.py appends to BENCHMARKS.md."""
import statistics
import sys
path, slow_ms, seconds = sys.argv[1:4]
rows = [dict(kv.split("=", 1) for kv in line.split()[1:]) for line in open(path) if line.strip()]
out = ["## Shielding the central service: coalescing and the micro-cache\n",
       f"`bench/shield.sh`: 64 connections (wrk, 1 thread) sending `GET /protected` with 8 distinct tokens in turn, "
       f"{seconds} s per row after a 2 s warm-up; the plain `--release` build on CPU 0, wrk and the stub on CPU 1. "
       f"*instant*: nginx answering at once; *{slow_ms} ms*: a stub answering after {slow_ms} ms, as a central "
       "service across a network does. Upstream calls are counted by the stub (they can exceed the client "
       "requests by the up to 64 still in flight when wrk stops counting). Latencies and CPU are of a shared "
       "2-core machine: compare calls per request, not p99s.\n",
       "| stub | proxy flags | client requests | upstream calls | calls per request | proxy CPU µs per request | p50 µs | p99 µs |",
       "|---|---|---:|---:|---:|---:|---:|---:|"]
flags = {"coalesce-off": "`--protected-coalesce off`", "coalesce-on": "defaults (coalescing on)",
         "cache-1s": "`--protected-cache-ttl 1s`"}
for r in rows:
    if r.get("stub"):
        stub = "instant" if r["stub"] == "nginx" else f"{slow_ms} ms"
        out.append(f"| {stub} | {flags[r['mode']]} | {r['client_requests']} | {r['upstream_calls']} | "
                   f"{r['calls_per_request']} | {r['cpu_us_per_request']} | {r['p50_us']} | {r['p99_us']} |")
instr = [r for r in rows if r.get("ir", "na") != "na"]
if instr:
    out.append("\nInstructions per request under callgrind, every request with a token of its own (nothing to "
               "coalesce: what the default path adds is the key hash, the in-flight map and holding the small "
               "body whole). Rounds alternate; under 64 connections the polls per request vary with how many "
               "requests each wake-up serves, so compare medians:\n")
    out.append("| proxy flags | rounds: instructions per request | median |")
    out.append("|---|---|---:|")
    for mode in ("coalesce-off", "coalesce-on"):
        per = [int(r["ir"]) / max(int(r["requests"]), 1) for r in instr if r["target"] == mode]
        if per:
            cells = ", ".join(f"{p:,.0f}" for p in per)
            out.append(f"| {flags[mode]} | {cells} | {statistics.median(per):,.0f} |")
plain = [r for r in instr if r["scenario"] == "protected_c64"]
if plain:
    out.append("\nThe plain path, `GET /protected` with one token for every request (`bench/wrk/protected.lua`), "
               "under callgrind: the build this branch started from (`BENCH_SHIELD_BASE`), this build with every "
               "shield off, and this build by default (where the 64 connections' identical requests coalesce):\n")
    out.append("| build and flags | rounds: instructions per request | median |")
    out.append("|---|---|---:|")
    names = {"base": "the base build", "all-off": "this build, `--protected-coalesce off --refresh-coalesce off "
             "--breaker-failures 0`", "defaults": "this build, defaults"}
    for name in ("base", "all-off", "defaults"):
        per = [int(r["ir"]) / max(int(r["requests"]), 1) for r in plain if r["target"] == name]
        if per:
            cells = ", ".join(f"{p:,.0f}" for p in per)
            out.append(f"| {names[name]} | {cells} | {statistics.median(per):,.0f} |")
print("\n".join(out))
