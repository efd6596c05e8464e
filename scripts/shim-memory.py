#!/usr/bin/env python3
"""Measures one stdio mcp-shim session: start-to-initialize time and the
resident memory (VmRSS, and the peak VmHWM) after initialize and after
tools/list, and what of it is the session's own (anonymous: heap, stacks,
relocated data) rather than pages of the binary that every session shares. Run by `scripts/bench --shim` (or alone:
scripts/shim-memory.py target/release/mcp-shim [RUNS]); prints a Markdown
table and, with --json, one JSON object.

No daemon is needed: the shim contacts nskd on the first tool call only,
and tools/list without a daemon lists every tool.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def anonymous_kib(pid):
    """Anonymous memory of the process (smaps_rollup): what no other
    session shares, unlike the binary's file pages in the page cache."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Anonymous in /proc/{pid}/smaps_rollup")


def rpc(proc, id_, method, params):
    msg = {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}
    proc.stdin.write((json.dumps(msg) + "\n").encode())
    proc.stdin.flush()
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"mcp-shim closed stdout before answering {method}")
        answer = json.loads(line)
        if answer.get("id") == id_:
            return answer


def one_session(shim, socket):
    start = time.perf_counter()
    proc = subprocess.Popen(
        [shim, "--socket", socket],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "NSKD_ENV"},
    )
    try:
        rpc(proc, 1, "initialize", {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "shim-memory", "version": "1"},
        })
        init_ms = (time.perf_counter() - start) * 1000
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        proc.stdin.flush()
        rss_init = status_kib(proc.pid, "VmRSS")
        tools = rpc(proc, 2, "tools/list", {})
        size = len(json.dumps(tools["result"], separators=(",", ":")))
        rss_list = status_kib(proc.pid, "VmRSS")
        hwm = status_kib(proc.pid, "VmHWM")
        threads = status_kib(proc.pid, "Threads")
        anon = anonymous_kib(proc.pid)
        return init_ms, rss_init, rss_list, hwm, threads, size, anon
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


START = "<!-- shim-memory:start -->"
END = "<!-- shim-memory:end -->"


def update(path, table):
    """Replaces the measured table between the markers in `path`."""
    with open(path) as f:
        text = f.read()
    if START not in text or END not in text:
        sys.exit(f"shim-memory.py: {path} has no {START} ... {END} markers (section \"## The stdio shim's memory\")")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    with open(path, "w") as f:
        f.write(head + START + "\n" + table + END + tail)


def main(argv):
    as_json = "--json" in argv
    target = None
    if "--update" in argv:
        i = argv.index("--update")
        target = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    args = [a for a in argv[1:] if a != "--json"]
    shim = args[0] if args else "target/release/mcp-shim"
    runs = int(args[1]) if len(args) > 1 else 20
    with tempfile.TemporaryDirectory() as tmp:
        socket = os.path.join(tmp, "none.sock")
        one_session(shim, socket)  # warm the page cache
        samples = [one_session(shim, socket) for _ in range(runs)]
    init_ms = statistics.median(s[0] for s in samples)
    rss_init = statistics.median(s[1] for s in samples)
    rss_list = statistics.median(s[2] for s in samples)
    anon = statistics.median(s[6] for s in samples)
    init_ms_max = max(s[0] for s in samples)
    rss_init_max = max(s[1] for s in samples)
    rss_list_max = max(s[2] for s in samples)
    anon_max = max(s[6] for s in samples)
    hwm = max(s[3] for s in samples)
    threads = samples[-1][4]
    size = samples[-1][5]
    if as_json:
        print(json.dumps({
            "runs": runs, "start_to_initialize_ms": round(init_ms, 2),
            "start_to_initialize_ms_max": round(init_ms_max, 2),
            "rss_after_initialize_kib": rss_init, "rss_after_initialize_kib_max": rss_init_max,
            "rss_after_tools_list_kib": rss_list, "rss_after_tools_list_kib_max": rss_list_max,
            "anonymous_after_tools_list_kib": anon, "anonymous_after_tools_list_kib_max": anon_max,
            "peak_rss_kib": hwm, "threads": threads, "tools_list_bytes": size,
        }))
        return
    table = (
        f"| stdio session ({runs} runs; {time.strftime('%Y-%m-%d')}) | median | max | target |\n"
        "|---|---|---|---|\n"
        f"| start to initialize answer | {init_ms:.2f} ms | {init_ms_max:.2f} ms | <= 5 ms |\n"
        f"| RSS after initialize | {rss_init / 1024:.2f} MiB | {rss_init_max / 1024:.2f} MiB | <= 4 MiB |\n"
        f"| RSS after tools/list | {rss_list / 1024:.2f} MiB | {rss_list_max / 1024:.2f} MiB | <= 4 MiB |\n"
        f"| of it anonymous (heap, stacks, relocated data; not shared) | {anon / 1024:.2f} MiB | {anon_max / 1024:.2f} MiB | |\n"
        f"| peak RSS (VmHWM) | | {hwm / 1024:.2f} MiB | |\n"
        f"| threads | {threads} | | |\n"
        f"| tools/list answer (compact JSON) | {size} bytes | | <= 16384 |\n"
    )
    print(table, end="")
    if target:
        update(target, table)


if __name__ == "__main__":
    main(sys.argv)
