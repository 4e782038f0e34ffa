#!/usr/bin/env python3
"""Turns bench/out/ab-results.txt (written by bench/ab.sh) into a Markdown table on stdout.

The same arithmetic as report.py: medians over rounds, and B/A as the median of the rounds'
ratios (A and B measured back to back in each round), with their range. Usage: ab.py RESULTS
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/report.py, beside this file)

def main():
    records = report.parse(sys.argv[1])
    rows = report.load_rows(records)
    out = ["# A/B: B relative to A (bench/ab.sh)", ""]
    for r in records:
        if r["kind"] == "META":
            out.append("- " + ", ".join(f"{k}: `{v.replace('+', ' ') or '-'}`" for k, v in r.items() if k != "kind"))
    scenarios = [s for s, _ in report.SCENARIOS if ("A", s) in rows and ("B", s) in rows]
    for scenario in scenarios:
        a, b = rows[("A", scenario)], rows[("B", scenario)]
        out += ["", f"## {scenario} ({a['reps']} rounds)", "", "| metric | A | B | B / A (rounds' range) |", "|---|---:|---:|---:|"]
        for key, label, fmt in report.LOAD_METRICS:
            rounds = report.paired_ratios(b, a, key)
            spread = f" ({min(rounds):.2f}–{max(rounds):.2f})" if rounds else ""
            out.append(f"| {label} | {fmt.format(a[key])} | {fmt.format(b[key])} | {report.load_ratio(b, a, key):.2f}×{spread} |")
        out.append(f"| errors | {a['errors']} | {b['errors']} | |")
    instr = {}
    for r in records:
        if r["kind"] == "INSTR":
            instr[(r["target"], r["scenario"])] = report.instructions_per_request(r)
    if instr:
        out += ["", "## Instructions per request (callgrind)", "", "| scenario | A | B | B / A |", "|---|---:|---:|---:|"]
        for scenario, _ in report.SCENARIOS:
            a, b = instr.get(("A", scenario)), instr.get(("B", scenario))
            if a and b:
                out.append(f"| {scenario} | {a:,.0f} | {b:,.0f} | {b / a:.3f}× |")
    memory = {}
    for r in records:
        if r["kind"] == "IDLEBURST":
            memory.setdefault((r["target"], "burst"), []).append(int(r["per_conn_bytes"]) / 1024)
            memory.setdefault((r["target"], "burst_peak"), []).append(int(r["rss_peak_kb"]) / 1024)
        elif r["kind"] == "STREAM":
            memory.setdefault((r["target"], "stream"), []).append(int(r["rss_peak_kb"]) / 1024)
    if memory:
        out += ["", "## Memory (fresh processes; median of rounds, every round listed)", "",
                "| metric | A | B | B / A |", "|---|---:|---:|---:|"]
        for key, label, unit in [
            ("burst", "RSS growth per idle connection after a burst (idle_conns.py … burst)", "KiB"),
            ("burst_peak", "… peak RSS during the burst (VmHWM)", "MiB"),
            ("stream", "peak RSS while 100 MiB streams to a 20 MB/s reader", "MiB"),
        ]:
            a, b = memory.get(("A", key)), memory.get(("B", key))
            if a and b:
                ma, mb = statistics.median(a), statistics.median(b)
                each = lambda v: ", ".join(f"{x:.2f}" for x in v)
                out.append(f"| {label} | {ma:.2f} {unit} ({each(a)}) | {mb:.2f} {unit} ({each(b)}) | {mb / ma:.2f}× |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
