#!/usr/bin/env python3
"""Turns bench/out/results.txt (written by bench/run.sh) into BENCHMARKS.md on stdout.

It computes only medians over repeats (of values, and of each round's ratio) and ratios to nginx; every input number was measured by
run.sh on this machine. Usage: report.py RESULTS BIN COMMAND
"""

import os
import platform
import statistics
import subprocess
import sys

SCENARIOS = [
    ("protected_c64", "GET /protected, 64 connections"),
    ("protected_c256", "GET /protected, 256 connections"),
    ("login_c64", "POST /login (urlencoded form), 64 connections"),
    ("register_c64", "POST /register (JSON), 64 connections"),
    ("protected_c64_log", "GET /protected, 64 connections, access log on (both, to a file)"),
    ("tls_protected_c64", "GET /protected, 64 connections, https upstream (TLS to the stub, pooled)"),
]

# Project targets: (scenario, metric, max ratio to nginx, "max" or "min").
TARGETS = {
    "protected_c64": {"cpu_us": (1.0, "max"), "rps": (1.0, "min"), "p99_ms": (1.0, "max")},
    "login_c64": {"cpu_us": (1.2, "max"), "rps": (1.0, "min")},
    "register_c64": {"cpu_us": (1.2, "max"), "rps": (1.0, "min")},
}


def parse(path):
    records = []
    with open(path) as f:
        for line in f:
            kind, *pairs = line.split()
            fields = dict(p.split("=", 1) for p in pairs)
            fields["kind"] = kind
            records.append(fields)
    return records


def load_rows(records):
    """(target, scenario) → medians of rps, p50, p99, CPU µs/request, instructions/request."""
    grouped = {}
    for r in records:
        if r["kind"] != "LOAD":
            continue
        requests = int(r["requests"])
        seconds = int(r["duration_us"]) / 1e6
        cpu_s = int(r["cpu_ticks"]) / int(r["clk_tck"])
        errors = sum(int(r[k]) for k in r if k.startswith("err_"))
        sample = {
            "rps": requests / seconds,
            "p50_ms": int(r["p50_us"]) / 1000,
            "p99_ms": int(r["p99_us"]) / 1000,
            "cpu_us": cpu_s * 1e6 / requests if requests else float("nan"),
            "busy_pct": 100 * cpu_s / seconds,
            "user_us": int(r.get("user_ticks", 0)) / int(r["clk_tck"]) * 1e6 / requests if requests else float("nan"),
            "instr": per_request(r, "instructions", requests),
            "syscalls": per_request(r, "syscalls", requests),
            "ctx": per_request(r, "ctx_switches", requests),
            "errors": errors,
            "rep": int(r.get("rep", 0)),
        }
        grouped.setdefault((r["target"], r["scenario"]), []).append(sample)
    rows = {}
    for key, samples in grouped.items():
        row = {m: statistics.median(s[m] for s in samples) for m in ("rps", "p50_ms", "p99_ms", "cpu_us", "user_us", "busy_pct")}
        for counter in ("instr", "syscalls", "ctx"):
            values = [s[counter] for s in samples if s[counter] is not None]
            row[counter] = statistics.median(values) if values else None
        row["errors"] = sum(s["errors"] for s in samples)
        row["reps"] = len(samples)
        row["samples"] = {s["rep"]: s for s in samples}
        rows[key] = row
    return rows


def load_ratio(ap, ng, key):
    """The median of the rounds' ratios (medians' ratio when rounds cannot be paired)."""
    rounds = paired_ratios(ap, ng, key)
    return statistics.median(rounds) if rounds else ratio(ap[key], ng[key])


def paired_ratios(ap, ng, key):
    """auth-proxy / nginx for each round, the two measured back to back in it."""
    reps = sorted(set(ap["samples"]) & set(ng["samples"]))
    return [ratio(ap["samples"][n][key], ng["samples"][n][key]) for n in reps]


def per_request(record, key, requests):
    value = record.get(key, "na")
    return int(value) / requests if value.isdigit() and requests else None


def ratio(a, b):
    return a / b if b else float("nan")


def verdict(scenario, metric, r):
    target = TARGETS.get(scenario, {}).get(metric)
    if target is None:
        return ""
    bound, kind = target
    ok = r <= bound if kind == "max" else r >= bound
    return f" {'✅' if ok else '❌'} ({'≤' if kind == 'max' else '≥'}{bound:g}×)"


# The rows of a load table: (key in load_rows' samples, label, format). bench/ab.py uses them too.
LOAD_METRICS = [
    ("cpu_us", "CPU time per request (µs, proxy process)", "{:.1f}"),
    ("user_us", "… of which user space (µs; the rest is kernel: loopback TCP, syscalls)", "{:.1f}"),
    ("busy_pct", "proxy CPU busy (% of its one core; below ~90 % the load side, not the proxy, set the pace)", "{:.0f}"),
    ("rps", "requests/s", "{:,.0f}"),
    ("p50_ms", "latency p50 (ms)", "{:.2f}"),
    ("p99_ms", "latency p99 (ms)", "{:.2f}"),
]


def load_table(rows, scenario, perf_ok):
    ap, ng = rows.get(("auth-proxy", scenario)), rows.get(("nginx", scenario))
    if not ap or not ng:
        return "_not measured_\n"
    lines = [
        "| metric | auth-proxy | nginx | auth-proxy / nginx |",
        "|---|---:|---:|---:|",
    ]
    for key, label, fmt in LOAD_METRICS:
        # The ratio is the median over rounds of each round's ratio: the two measurements of a
        # round ran back to back, so drift in the machine's background load cancels in it.
        rounds = paired_ratios(ap, ng, key)
        r = load_ratio(ap, ng, key)
        spread = f" (rounds {min(rounds):.2f}–{max(rounds):.2f})" if key == "cpu_us" and len(rounds) > 1 else ""
        lines.append(
            f"| {label} | {fmt.format(ap[key])} | {fmt.format(ng[key])} | {r:.2f}×{verdict(scenario, key, r)}{spread} |"
        )
    counters = [
        ("instr", "instructions per request (perf)", "{:,.0f}"),
        ("syscalls", "syscalls per request (perf, proxy process)", "{:.2f}"),
        ("ctx", "context switches per request (perf)", "{:.3f}"),
    ]
    for key, label, fmt in counters:
        if ap[key] is not None and ng[key] is not None:
            lines.append(
                f"| {label} | {fmt.format(ap[key])} | {fmt.format(ng[key])} | {ratio(ap[key], ng[key]):.2f}× |"
            )
    lines.append(f"| errors (connect/read/write/timeout/non-2xx) | {ap['errors']} | {ng['errors']} | |")
    return "\n".join(lines) + "\n"


def per_request_table(records, kind, per_req, fmt, missing, left=("auth-proxy", "auth-proxy"), right=("nginx", "nginx")):
    """`left` vs `right` ((target, column title)) per scenario, from the `kind` records; `per_req` reads one record."""
    by = {(r["target"], r["scenario"]): r for r in records if r["kind"] == kind}
    lines = []
    for scenario, title in SCENARIOS:
        a, b = by.get((left[0], scenario)), by.get((right[0], scenario))
        if not a or not b:
            continue
        a, b = per_req(a), per_req(b)
        if a is None or b is None:
            continue
        lines.append(f"| {title} | {fmt.format(a)} | {fmt.format(b)} | {ratio(a, b):.2f}× |")
    if not lines:
        return missing
    head = [f"| scenario | {left[1]} | {right[1]} | {left[1]} / {right[1]} |", "|---|---:|---:|---:|"]
    return "\n".join(head + lines) + "\n"


def allocs_per_request(r):
    calls = [r[k] for k in ("malloc", "realloc", "calloc")]
    if not all(c.isdigit() for c in calls) or not int(r["requests"]):
        return None
    return sum(int(c) for c in calls) / int(r["requests"])


def instructions_per_request(r):
    if not r.get("ir", "na").isdigit() or not int(r["requests"]):
        return None
    return int(r["ir"]) / int(r["requests"])


def alloc_table(records):
    return per_request_table(
        records, "ALLOCS", allocs_per_request, "{:.1f}", "_not measured (perf uprobes unavailable)_\n"
    )


def instr_table(records):
    return per_request_table(
        records, "INSTR", instructions_per_request, "{:,.0f}", "_not measured (no valgrind)_\n"
    )


def plain_build_table(records):
    """The PGO build's instructions beside the plain release build's, when the run counted both."""
    table = per_request_table(
        records, "INSTR", instructions_per_request, "{:,.0f}", "",
        left=("auth-proxy", "PGO build"), right=("auth-proxy-release", "plain release build"),
    )
    return "The same source built without a profile (plain `cargo build --release`), counted the same way:\n\n" + table if table else ""


def base_build_table(records):
    """This build's instructions beside those of BENCH_BASE_BIN (the build a branch started from)."""
    base = next((r.get("base_bin") for r in records if r["kind"] == "META" and r.get("base_bin")), "")
    table = per_request_table(
        records, "INSTR", instructions_per_request, "{:,.0f}", "",
        left=("auth-proxy", "this build"), right=("auth-proxy-base", "base build"),
    )
    return f"Against the base build (`BENCH_BASE_BIN={base}`), counted the same way in the same run:\n\n" + table if table else ""


def floor_table(records):
    """hyper's server and client alone (examples/hyper_floor.rs) beside nginx: the floor under auth-proxy's counts."""
    table = per_request_table(
        records, "INSTR", instructions_per_request, "{:,.0f}", "",
        left=("hyper-floor", "hyper alone"), right=("nginx", "nginx"),
    )
    if not table:
        return ""
    return (
        "hyper alone (`examples/hyper_floor.rs`: hyper's HTTP/1 server parses the request, the same request with "
        "`Host` replaced goes upstream over a pooled `hyper::client::conn::http1` connection, the answer comes back "
        "as it came; nothing else; plain release build, `writev(false)` like auth-proxy), counted the same way "
        "in the same run — the part of every row above that no change to auth-proxy's own code can remove:\n\n"
        + table
    )


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
    return model, os.cpu_count(), platform.release(), nginx, wrk[0] if wrk else "wrk"


def memory_table(records):
    by = {(r["kind"], r["target"], r.get("phase")): r for r in records if "target" in r}
    kib = lambda v: f"{int(v) / 1024:.1f} MiB"
    lines = ["| metric | auth-proxy | nginx (worker) | auth-proxy / nginx |", "|---|---:|---:|---:|"]

    def row(label, a, b, fmt, target=None):
        r = ratio(a, b)
        mark = ""
        if target is not None:
            mark = f" {'✅' if a <= target else '❌'} (target ≤ {fmt(target)})"
        lines.append(f"| {label} | {fmt(a)} | {fmt(b)} | {r:.2f}×{mark} |")

    start = (by.get(("MEM", "auth-proxy", "start")), by.get(("MEM", "nginx", "start")))
    if all(start):
        row("RSS after start", int(start[0]["rss_kb"]), int(start[1]["rss_kb"]), kib)
    load = (by.get(("MEM", "auth-proxy", "load")), by.get(("MEM", "nginx", "load")))
    if all(load):
        row("peak RSS under load (VmHWM)", int(load[0]["hwm_kb"]), int(load[1]["hwm_kb"]), kib)
    idle = (by.get(("IDLE", "auth-proxy", None)), by.get(("IDLE", "nginx", None)))
    if all(idle):
        n = int(idle[0]["n"])
        kib_small = lambda v: f"{v / 1024:.2f} KiB"
        if all("marginal_bytes" in r for r in idle):
            row(
                f"memory per idle keep-alive connection (RSS growth per connection from {n // 2} to {n} open)",
                int(idle[0]["marginal_bytes"]),
                int(idle[1]["marginal_bytes"]),
                kib_small,
                target=4096,
            )
        row(
            f"… RSS growth from none to {n} open, divided by {n} (includes one-time growth)",
            int(idle[0]["per_conn_bytes"]),
            int(idle[1]["per_conn_bytes"]),
            kib_small,
        )
    burst = (by.get(("IDLEBURST", "auth-proxy", None)), by.get(("IDLEBURST", "nginx", None)))
    if all(burst):
        n = int(burst[0]["n"])
        row(
            f"memory per idle keep-alive connection after a burst ({n} opened at once, one request each, "
            "RSS growth divided by {n}, 2 s after the last answer)".replace("{n}", str(n)),
            int(burst[0]["per_conn_bytes"]),
            int(burst[1]["per_conn_bytes"]),
            lambda v: f"{v / 1024:.2f} KiB",
            target=4096,
        )
        row(
            "… peak RSS during that burst (VmHWM)",
            int(burst[0]["rss_peak_kb"]),
            int(burst[1]["rss_peak_kb"]),
            kib,
        )
    stream = (by.get(("STREAM", "auth-proxy", None)), by.get(("STREAM", "nginx", None)))
    if all(stream):
        row(
            "peak RSS while 100 MiB streams to a 20 MB/s reader",
            int(stream[0]["rss_peak_kb"]),
            int(stream[1]["rss_peak_kb"]),
            kib,
            target=8 * 1024,
        )
        row(
            "… growth over RSS before the stream",
            int(stream[0]["rss_peak_kb"]) - int(stream[0]["rss_before_kb"]),
            int(stream[1]["rss_peak_kb"]) - int(stream[1]["rss_before_kb"]),
            kib,
        )
        lines.append(
            f"| … stream status / bytes received | {stream[0]['status']} / {stream[0]['bytes']} | {stream[1]['status']} / {stream[1]['bytes']} | |"
        )
    return "\n".join(lines) + "\n"


def main():
    results, binary, command = sys.argv[1:4]
    records = parse(results)
    meta = {}
    for r in records:
        if r["kind"] == "META":
            meta.update(r)
    rows = load_rows(records)
    perf_ok = meta.get("perf") == "1"
    model, cpus, kernel, nginx, wrk = machine()
    quick = meta.get("quick") == "1"
    proxy_args = meta.get("proxy_args", "").replace("+", " ")
    build = meta.get("build", "release")
    shown_command = (
        ("BENCH_QUICK=1 " if quick else "")
        + ("BENCH_BUILD=release " if build == "release" else "")
        + (f'BENCH_PROXY_ARGS="{proxy_args}" ' if proxy_args else "")
        + "bench/run.sh"
    )
    out = []
    out.append("# Benchmarks: auth-proxy against nginx\n")
    out.append(
        "Generated by `bench/run.sh` (every number below was measured by it; `bench/report.py` only takes "
        "medians and ratios). Re-run it to refresh this file.\n"
    )
    out.append("## Setup\n")
    out.append(f"- Command: `{shown_command}` ({meta.get('duration_s')} s per measurement, "
               f"{meta.get('reps')} repeat(s), medians; after a {2} s warm-up per scenario; "
               "auth-proxy and nginx measured back to back in each round, the order alternating; "
               "the ratio column is the median of the rounds' ratios, so drift in the background load cancels)")
    out.append(f"- Date: {meta.get('date')}")
    out.append(f"- Machine: {cpus} CPUs, {model}, Linux {kernel}")
    out.append(f"- Load average (1/5/15 min) at start: {meta.get('load_start')}, at end: {meta.get('load_end')} "
               "— the machine is shared; absolute numbers are noisy, the ratios are the result")
    built = (
        "the profile-guided build from `bench/pgo.sh` (the release profile, `lto`, `codegen-units = 1`, plus "
        "an LLVM profile of the harness's own traffic; the plain `cargo build --release` binary is counted "
        "beside it under Instructions per request)"
        if build == "pgo"
        else "plain `cargo build --release` (`lto`, `codegen-units = 1`)"
    )
    out.append(f"- Tools: {nginx}; {wrk}; auth-proxy: {built}; "
               "default runtime: pinned to one CPU it runs single-threaded (`--worker-threads 0` = one per available CPU)")
    out.append(
        "- Pinning: the proxy under test (auth-proxy's whole process; nginx's one worker) on CPU 0; "
        "wrk (1 thread) and the stub central service (nginx, 1 worker, fixed JSON answers) on CPU 1"
    )
    out.append(
        "- Reference: nginx as the equivalent plain reverse proxy: `proxy_http_version 1.1`, `upstream` with "
        "`keepalive 64`, `proxy_set_header Connection \"\"`, the same X-Forwarded-*/X-Request-Id headers, "
        "access log off (`bench/nginx/reference.conf.in`)"
    )
    out.append(
        "- CPU time per request: the proxy process's utime+stime from `/proc/PID/stat` across the "
        "measurement, divided by the requests wrk completed"
    )
    if perf_ok:
        out.append("- Instructions per request: `perf stat -e instructions -p PID` across the measurement")
    else:
        out.append("- Instructions per request: counted by callgrind in separate runs (its own table below); "
                   "`perf stat -e instructions` reports `<not supported>` here (no hardware counters in this VM)")
    if "raw_syscalls" in meta.get("perf_events", ""):
        out.append("- Syscalls and context switches per request: `perf stat -e raw_syscalls:sys_enter,context-switches "
                   "-p PID` across the measurement (tracepoint and software events; they work without hardware counters)")
    out.append("")

    headline = rows.get(("auth-proxy", "protected_c64")), rows.get(("nginx", "protected_c64"))
    if all(headline):
        out.append("## Headline\n")
        out.append(
            f"`GET /protected` at 64 connections: auth-proxy uses **{load_ratio(*headline, 'cpu_us'):.2f}×** "
            f"nginx's CPU time per request, serves **{load_ratio(*headline, 'rps'):.2f}×** its "
            f"requests/s, at **{load_ratio(*headline, 'p99_ms'):.2f}×** its p99 latency.\n"
        )
    out.append(
        "How to read this: both proxies share the machine with the load side (wrk and the stub on the other "
        "core). Where a proxy's core is not saturated, requests/s and latency are set by the load side and "
        "by other work on the machine, so they say little; CPU time per request does not depend on that and "
        "is the comparison that carries over to production.\n"
    )
    out.append("## Load scenarios\n")
    for scenario, title in SCENARIOS:
        out.append(f"### {title}\n")
        out.append(load_table(rows, scenario, perf_ok))
    out.append("## Instructions per request (callgrind)\n")
    out.append(
        "User-space instructions per request, counted by valgrind's callgrind over a separate bounded wrk run "
        f"({meta.get('ir_seconds', '5')} s at 64 connections, after a warm-up; collection on only during it) — the "
        "steadiest figure on a shared machine, since it does not move with load. Kernel work (loopback TCP, "
        "syscalls) is not in it; the CPU-time rows above include both. nginx runs as one process "
        "(`master_process off`) so that valgrind follows the process that proxies.\n"
    )
    out.append(instr_table(records))
    out.append(plain_build_table(records))
    out.append(base_build_table(records))
    out.append(floor_table(records))
    out.append("## Heap allocations per request\n")
    out.append(
        "malloc + realloc + calloc calls per request, counted with perf uprobes on the C library over a separate "
        "3 s run at 64 connections (a uprobe traps on every call, so these runs are never the timed ones). "
        "nginx allocates mostly from per-request pools, which is what this shows.\n"
    )
    out.append(alloc_table(records))
    out.append("## Memory\n")
    out.append(memory_table(records))
    out.append(
        "Idle connections: opened one after another, each after one `GET /protected` answered, "
        "held open; RSS of the proxy process (nginx: its worker) before, after half and after all were "
        "open (each mark 1 s after the last one opened). The headline figure is the slope between the "
        "last two marks — what one more idle connection costs; the average over all includes memory "
        "the allocator keeps after the opening burst (auth-proxy frees a connection's hyper buffers "
        "once it has been idle 100 ms, and glibc keeps freed memory mapped). "
        "After a burst: a fresh process, all connections opened at once, each sends one `GET /protected` "
        "at once, all held open; RSS 2 s after the last answer, minus RSS before, divided by their number — "
        "what the process keeps of the burst while its connections sit idle. "
        "Streaming: the stub serves a 100 MiB body on `/protected`; curl reads it at 20 MB/s; RSS sampled "
        "every 50 ms. nginx uses its default `proxy_buffering on`, so it spools the body to a temp file.\n"
    )
    out.append("## Reproduce, profile, try a lever\n")
    out.append("- `bench/run.sh` (about 10 minutes, 3 with `BENCH_QUICK=1`; the PGO build adds about 12 the first "
               "time): installs nginx, wrk, perf, valgrind from Debian packages if missing, builds `--release` and "
               "the PGO binary (`bench/pgo.sh`), writes `bench/out/` and this file. `BENCH_BUILD=release bench/run.sh` "
               "measures the plain release build instead.")
    out.append("- `BENCH_PROXY_ARGS=\"--worker-threads 2\" bench/run.sh`: the same run with extra auth-proxy flags.")
    out.append("- `BENCH_B=other/auth-proxy bench/ab.sh` (or `BENCH_B_ARGS=...`, `BENCH_B_ENV=...`): a lever measured as "
               "two auth-proxy builds back to back, the same rounds and ratios, into `bench/out/ab.md` (never this file).")
    out.append("- `BENCH_AB_MEMORY=1 BENCH_AB_SCENARIOS=none bench/ab.sh`: memory only, A and B in fresh processes each round (idle connections after a burst of 5,000, the 100 MiB stream). `BENCH_PHASES=\"instructions idle\" bench/run.sh`: only those phases, into `bench/out/report.md`; `BENCH_BASE_BIN=...` counts a base build's instructions beside this one's; `BENCH_BIN=...` measures a kept binary; `BENCH_PORT_OFFSET=2000` moves every port.")
    out.append("- `bench/profile.sh`: perf profile of auth-proxy under `GET /protected` → `bench/out/profile.txt`; "
               "`BENCH_PROFILER=callgrind bench/profile.sh` for instruction-level counts where perf has no hardware counters.")
    out.append("- `cargo bench --bench proxy`: criterion benches of the hot paths and an in-process end-to-end round trip.\n")
    # bench/shield.sh's measurements (coalescing, micro-cache), kept across runs of this script,
    # and bench/shield_nginx.sh's comparison of the same load with nginx.
    # bench/workers.sh's 1- and 2-worker comparison likewise.
    for name in ("shield.md", "shield_nginx.md", "workers.md"):
        kept = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
        if os.path.exists(kept):
            with open(kept, encoding="utf-8") as f:
                out.append(f.read())
    # Levers measured with bench/ab.sh (auth-proxy against itself), kept by hand in
    # bench/levers.md with the command that measured each: carried into every regenerated file.
    levers = os.path.join(os.path.dirname(os.path.abspath(__file__)), "levers.md")
    if os.path.exists(levers):
        with open(levers, encoding="utf-8") as f:
            out.append(f.read())
    print("\n".join(out))


if __name__ == "__main__":
    main()
