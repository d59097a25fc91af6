#!/usr/bin/env python3
"""Regenerates link/hot-code.ld: the functions a C program's clients run to create,
connect and stay idle, which build.rs has the linker place together at the start of the
shared library's code.

Why: a process maps a shared library's code in 64 KiB windows around each page it runs
(the kernel's fault-around). Spread over the whole 1.5 MB of code, the few hundred
functions of connect and keepalive made a program touch almost all of it: about 1.3 MB of
RSS for the first idle client, 13 KiB per client at 100 clients. Grouped, they fit in a
few windows.

How: the bench drivers (bench/c, built against include/) run `idle` under callgrind and
then natively under `perf record -e page-faults -d` against a private mosquitto. callgrind
names every function executed; the page faults name the first function each code window
was entered for, which catches what runs only outside valgrind (other timings). Each pass
links the library with the list so far and adds what still faulted outside the group,
until nothing new turns up.

Patterns, not symbols: a name's hash (`17h...E`, a v0 crate disambiguator, an
`.llvm.NNN` suffix) becomes `*`, so the list survives code changes and toolchain updates,
except where the pattern would take in every instance of a generic function (they differ
only in the hash): those keep their hash. A pattern that matches nothing is ignored by the
linker; rerun this script when `tests/packaging.rs`'s layout check or the idle benchmark's
RSS per client says the group has gone stale.

Usage (from the repository root; needs valgrind, perf, mosquitto, cc):
    python3 scripts/hot_code.py            adds to the list as it is
    python3 scripts/hot_code.py --fresh    starts over (drops what no longer runs)
"""

import bisect
import fnmatch
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "link", "hot-code.ld")
LIB = os.path.join(ROOT, "target", "release", "libmqttsync.so")
CLIENTS = "20"
PASSES = 6
RUNS = 10
GROUPS = ["MQTTClient (and what MQTTAsync shares with it)", "MQTTAsync only"]


def without_llvm_suffix(sym):
    """`sym` with the `.llvm.NNN` suffix of a promoted local symbol as `*`."""
    return re.sub(r"\.llvm\.\d+$", "*", sym)


def pattern(sym):
    """A linker glob for a symbol: its hashes replaced by `*`."""
    sym = without_llvm_suffix(sym)
    sym = re.sub(r"17h[0-9a-f]{16}E", "17h*", sym)
    sym = re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", sym)
    return sym.replace("**", "*")


def matching(pat, lib_names, most):
    """How many functions of the library (`lib_names`, sorted) `pat` matches, counting up
    to `most`."""
    prefix = pat.split("*", 1)[0]
    rx = re.compile(fnmatch.translate(pat))
    i = bisect.bisect_left(lib_names, prefix)
    hits = 0
    while i < len(lib_names) and lib_names[i].startswith(prefix) and hits < most:
        if rx.match(lib_names[i]):
            hits += 1
        i += 1
    return hits


def specific(pat, sym, lib_names):
    """`pat`, unless it matches more than one function (instances of one generic function
    differ only in their hash): then the symbol itself, hash included, so that the group
    does not take in every instance."""
    return without_llvm_suffix(sym) if matching(pat, lib_names, 2) > 1 else pat


def callgrind_functions(path, obj):
    """Functions of object `obj` that ran, from a callgrind output file."""
    names_ob, names_fn = {}, {}
    cur_ob, found = None, []

    def name(table, rest):
        m = re.match(r"\((\d+)\)(?: (.*))?", rest)
        if not m:
            return rest
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), "")

    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("ob="):
                cur_ob = name(names_ob, line[3:].strip())
            elif line.startswith("cob="):
                name(names_ob, line[4:].strip())
            elif line.startswith("cfn="):
                name(names_fn, line[4:].strip())
            elif line.startswith("fn="):
                # `'N`: callgrind's mark for the Nth level of a recursion.
                fn = re.sub(r"'\d+$", "", name(names_fn, line[3:].strip()))
                if cur_ob and obj in cur_ob and not fn.startswith("0x"):
                    found.append(fn)
    return found


def symbols(lib):
    """(address, size, name) of the library's functions, by address."""
    out = subprocess.run(
        ["nm", "-S", "--defined-only", lib], capture_output=True, text=True, check=True
    ).stdout
    rows = []
    for line in out.splitlines():
        p = line.split()
        if len(p) == 4 and p[2] in "tTwW":
            rows.append((int(p[0], 16), int(p[1], 16), p[3]))
    rows.sort()
    return rows


def hot_range(lib):
    """Start and end address of the hot group in the library (0, 0 without one)."""
    out = subprocess.run(["readelf", "-SW", lib], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if ".text.mqttsync_hot" in line:
            p = line.split()
            i = p.index(".text.mqttsync_hot")
            addr, size = int(p[i + 2], 16), int(p[i + 4], 16)
            return addr, addr + size
    return 0, 0


def faulted_functions(perf_data, rows, lo, hi):
    """Library functions (`rows`, from `symbols`) whose code page faulted (the first entry
    into a 64 KiB window) outside [lo, hi): the part of the hot code the driver is meant to
    run."""
    out = subprocess.run(
        ["perf", "script", "-i", perf_data, "--show-mmap-events", "-F", "addr"],
        capture_output=True,
        text=True,
    ).stdout
    base = None
    addrs = []
    for line in out.splitlines():
        if "PERF_RECORD_MMAP" in line:
            # The mapping of file offset 0 starts at the load base (first segment at 0).
            m = re.search(r"\[0x([0-9a-f]+)\(0x[0-9a-f]+\) @ 0 .*libmqttsync", line)
            if m and base is None:
                base = int(m.group(1), 16)
            continue
        p = line.split()
        if len(p) == 1:
            try:
                addrs.append(int(p[0], 16))
            except ValueError:
                pass
    if base is None:
        return []
    starts = [r[0] for r in rows]
    found = []
    for addr in addrs:
        v = addr - base
        if lo <= v < hi:
            continue
        i = bisect.bisect_right(starts, v) - 1
        if i >= 0 and rows[i][0] <= v < rows[i][0] + max(rows[i][1], 1):
            # Every name at that address: merged functions are aliases of one body, whose
            # section carries only one of the names.
            start = rows[i][0]
            while i > 0 and rows[i - 1][0] == start:
                i -= 1
            while i < len(rows) and rows[i][0] == start:
                found.append(rows[i][2])
                i += 1
    return found


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, broker):
    """Waits until the broker accepts connections on `port` (10 s at most)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if broker.poll() is not None:
            sys.exit("hot_code.py: mosquitto exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"hot_code.py: mosquitto is not listening on port {port}")


def main():
    for tool in ("valgrind", "perf", "mosquitto", "cc", "nm", "readelf"):
        if not shutil.which(tool):
            sys.exit(f"hot_code.py: {tool} is needed")
    tmp = tempfile.mkdtemp(prefix="mqttsync-hot-")
    broker = None
    try:
        port = free_port()
        conf = os.path.join(tmp, "m.conf")
        with open(conf, "w") as f:
            f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        broker = subprocess.Popen(
            ["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_listening(port, broker)
        drivers = []
        for src in ("paho_bench", "async_bench"):
            exe = os.path.join(tmp, src)
            subprocess.run(
                ["cc", "-O2", "-o", exe, "-I", "include", "-I", "bench/c", f"bench/c/{src}.c",
                 "-Ltarget/release", "-lmqttsync", "-lpthread", "-ldl", "-lm"],
                cwd=ROOT, check=True,
            )
            drivers.append(exe)
        libdir = os.path.join(tmp, "lib")
        os.makedirs(libdir)
        # BENCH_IDLE_EXIT: the drivers end right after measuring, so that what closing the
        # clients runs is not taken for idle code.
        env = dict(os.environ, LD_LIBRARY_PATH=libdir, BENCH_IDLE_EXIT="1")

        # One group per driver, the C client's first: a program using only MQTTClient maps
        # the start of the hot code and not what only MQTTAsync runs.
        groups = [[] for _ in drivers]
        seen = {}
        if "--fresh" not in sys.argv:
            # Start from the list as it is: a function that enters a window only now and
            # then (a thread that waits, a timer) stays once found.
            for g, pats in enumerate(read_groups()):
                for p in pats:
                    if p not in seen:
                        seen[p] = g
                        groups[g].append(p)

        # The library as last built: its functions (`symbols`), their names sorted, where
        # its hot group lies. The library changes only in `build`.
        built = {}

        def build():
            write(groups)
            subprocess.run(["cargo", "build", "--release", "--lib"], cwd=ROOT, check=True)
            shutil.copy(LIB, os.path.join(libdir, "libmqttsync.so.0"))
            built["rows"] = symbols(LIB)
            built["names"] = sorted(r[2] for r in built["rows"])
            built["hot"] = hot_range(LIB)

        def add(group, names):
            new = 0
            lib_names = built["names"]
            for n in names:
                p = specific(pattern(n), n, lib_names)
                if seen.get(p, len(groups)) > group:
                    # New, or run by an earlier driver too: into the earlier group.
                    if p in seen:
                        groups[seen[p]].remove(p)
                    seen[p] = group
                    groups[group].append(p)
                    new += 1
            return new

        def group_range(g):
            """Where groups 0..=g lie in the library just built."""
            lo, hi = built["hot"]
            for p in (groups[g + 1] if g + 1 < len(groups) else [])[:1]:
                rx = re.compile(fnmatch.translate(p))
                starts = [a for a, _, n in built["rows"] if rx.match(n)]
                if starts:
                    hi = min(starts)
            return lo, hi

        build()
        for g, exe in enumerate(drivers):
            out = os.path.join(tmp, "cg.out")
            subprocess.run(
                ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}",
                 exe, "idle", "127.0.0.1", str(port), CLIENTS],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
            )
            found = callgrind_functions(out, "libmqttsync")
            print(f"callgrind {os.path.basename(exe)}: +{add(g, found)}")
        for i in range(PASSES):
            build()
            new = 0
            # Each driver a few times: which function first enters a window depends on
            # timing (and on where the library was loaded).
            for g, exe in enumerate(drivers):
                for _ in range(RUNS):
                    data = os.path.join(tmp, "pf.data")
                    subprocess.run(
                        ["perf", "record", "-q", "-e", "page-faults", "-c", "1", "-d", "-o",
                         data, exe, "idle", "127.0.0.1", str(port), "100"],
                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        check=True,
                    )
                    lo, hi = group_range(g)
                    new += add(g, faulted_functions(data, built["rows"], lo, hi))
            print(f"pass {i + 1}: +{new}")
            if new == 0:
                break
        build()
        # What no function of this build matches any more (renamed, inlined, a generic
        # instance whose hash changed; what still runs was found again above) goes.
        stale = 0
        for pats in groups:
            keep = [p for p in pats if matching(p, built["names"], 1)]
            stale += len(pats) - len(keep)
            pats[:] = keep
        write(groups)
        print(f"{sum(map(len, groups))} patterns in {os.path.relpath(OUT, ROOT)}"
              f" ({stale} that matched nothing dropped)")
    finally:
        if broker:
            broker.send_signal(signal.SIGTERM)
            broker.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def read_groups():
    """The groups of the current list (none if there is no list)."""
    groups = []
    try:
        with open(OUT) as f:
            for line in f:
                line = line.strip()
                if line.startswith("/* ") and line[3:-3] in GROUPS:
                    groups.append([])
                elif line.startswith("*(.text.") and groups:
                    groups[-1].append(line[len("*(.text."):].split()[0])
    except FileNotFoundError:
        pass
    return groups


def write(groups):
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(
            "/* Generated by scripts/hot_code.py: the functions a C program's clients run to\n"
            " * create, connect and stay idle, placed together before the rest of the code\n"
            " * (build.rs passes this to the linker for the shared library). */\n"
            "SECTIONS\n{\n  .text.mqttsync_hot :\n  {\n"
        )
        for title, pats in zip(GROUPS, groups):
            f.write(f"    /* {title} */\n")
            for p in pats:
                f.write(f"    *(.text.{p} .text.unlikely.{p})\n")
        f.write("  }\n}\nINSERT BEFORE .text;\n\n")
        f.write(
            "/* Constants first among the read-only data, next to the relocations the loader\n"
            " * reads anyway, instead of between the exception tables: the pages a connect\n"
            " * reads are then mostly mapped already. */\n"
            "SECTIONS\n{\n  .rodata : { *(.rodata .rodata.*) }\n}\nINSERT AFTER .rela.plt;\n"
        )


if __name__ == "__main__":
    main()
