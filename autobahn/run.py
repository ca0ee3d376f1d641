#!/usr/bin/env python3
"""Runs the Autobahn conformance cases (through kosoku) against wsharp in both roles and
compares every case's verdict with expected-results.json.

Server role: kosoku's fuzzing client drives `wsharp echo`.
Client role: examples/autobahn_client follows kosoku's fuzzing server.

Usage: run.py --wsharp target/release/wsharp --client target/release/examples/autobahn_client
              [--kosoku .venv/bin/kosoku] [--role server|client|both] [--update]
Ends with a line 'autobahn: N passed, N failed'; exits non-zero on any difference.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected-results.json"
PASS_BEHAVIOR = {"OK", "NON-STRICT", "INFORMATIONAL"}
PASS_CLOSE = {"OK", "INFORMATIONAL"}
EXCLUDE: list[str] = []
# Server-role chunks: (globs to include, globs to exclude, parallelism, hard timeout in s),
# so that a hang loses only its own chunk.
SERVER_CHUNKS = [
    ([], ["9.*", "12.*", "13.*"], 4, 300),
    (["9.*"], [], 2, 600),
    (["12.*", "13.*"], [], 2, 1200),
]
CLIENT_TIMEOUT = 1500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, deadline: float) -> None:
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"autobahn: nothing listens on port {port}")


def verdict(case: dict) -> str:
    if case["behavior"] == "UNIMPLEMENTED":
        return "unimplemented"
    if case["behavior"] in PASS_BEHAVIOR and case["behaviorClose"] in PASS_CLOSE:
        return "pass"
    return "fail"


def read_index(outdir: Path) -> dict:
    """Merges every agent's cases (kosoku files ERROR cases under HOST:PORT)."""
    index = outdir / "index.json"
    if not index.exists():
        return {}
    merged = {}
    for cases in json.loads(index.read_text()).values():
        for case_id, case in cases.items():
            merged[case_id] = {"behavior": case["behavior"], "behaviorClose": case["behaviorClose"],
                               "verdict": verdict(case)}
    return merged


def kosoku_args(includes, excludes):
    args = []
    for g in includes:
        args += ["-i", g]
    for g in excludes:
        args += ["-x", g]
    return args


def run_server_role(kosoku: str, wsharp: str, work: Path) -> dict:
    results = {}
    for n, (inc, exc, par, limit) in enumerate(SERVER_CHUNKS):
        port = free_port()
        server = subprocess.Popen([wsharp, "-q", "echo", "--listen", f"127.0.0.1:{port}"])
        try:
            wait_port(port, time.time() + 10)
            out = work / f"server-{n}"
            cmd = [kosoku, "-m", "fuzzingclient", f"127.0.0.1:{port}", "-o", str(out), "-p", str(par)]
            started = time.time()
            try:
                subprocess.run(cmd + kosoku_args(inc, exc), timeout=limit,
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            except subprocess.TimeoutExpired:
                print(f"autobahn: server chunk {n} hit its {limit} s timeout", file=sys.stderr)
            print(f"autobahn: server chunk {inc or 'all'} took {time.time() - started:.1f} s", file=sys.stderr)
            results.update(read_index(out))
        finally:
            server.terminate()
            server.wait(10)
    return results


def run_client_role(kosoku: str, client: str, work: Path) -> dict:
    port = free_port()
    out = work / "client"
    runner = subprocess.Popen([kosoku, "-m", "fuzzingserver", f"127.0.0.1:{port}", "-o", str(out)]
                              + kosoku_args([], EXCLUDE), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_port(port, time.time() + 20)
        started = time.time()
        try:
            subprocess.run([client, f"ws://127.0.0.1:{port}", "wsharp"], timeout=CLIENT_TIMEOUT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            print(f"autobahn: client run hit its {CLIENT_TIMEOUT} s timeout", file=sys.stderr)
        try:
            runner.wait(60)
        except subprocess.TimeoutExpired:
            print("autobahn: the fuzzing server did not finish its reports", file=sys.stderr)
        print(f"autobahn: client role took {time.time() - started:.1f} s", file=sys.stderr)
    finally:
        if runner.poll() is None:
            runner.terminate()
            runner.wait(10)
    return read_index(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wsharp", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--kosoku", default=str(Path(sys.executable).parent / "kosoku"))
    ap.add_argument("--role", choices=["server", "client", "both"], default="both")
    ap.add_argument("--update", action="store_true", help="rewrite expected-results.json")
    ap.add_argument("--keep", help="keep the reports in this directory")
    args = ap.parse_args()
    for tool in (args.kosoku, args.wsharp, args.client):
        if not os.access(tool, os.X_OK):
            print(f"autobahn: {tool} is missing or not executable", file=sys.stderr)
            print("autobahn: 0 passed, 1 failed")
            return 1
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="autobahn-"))
    work.mkdir(parents=True, exist_ok=True)
    roles = ["server", "client"] if args.role == "both" else [args.role]
    got = {}
    if "server" in roles:
        got["server"] = run_server_role(args.kosoku, args.wsharp, work)
    if "client" in roles:
        got["client"] = run_client_role(args.kosoku, args.client, work)

    if args.update:
        expected = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
        expected.update({role: dict(sorted(cases.items(), key=lambda kv: [int(p) for p in kv[0].split(".")]))
                         for role, cases in got.items()})
        EXPECTED.write_text(json.dumps(expected, indent=1) + "\n")
        print(f"autobahn: wrote {EXPECTED.name}", file=sys.stderr)
    expected = json.loads(EXPECTED.read_text())

    passed = failed = 0
    for role in roles:
        want, have = expected.get(role, {}), got[role]
        for case_id in sorted(set(want) | set(have), key=lambda c: [int(p) for p in c.split(".")]):
            w = want.get(case_id, {}).get("verdict", "absent")
            h = have.get(case_id, {}).get("verdict", "missing")
            if w == h == "pass":
                passed += 1
            else:
                failed += 1
                detail = have.get(case_id, {})
                print(f"autobahn: {role} {case_id}: expected {w}, got {h} "
                      f"({detail.get('behavior', '-')}/{detail.get('behaviorClose', '-')})")
        counts = {}
        for case in have.values():
            counts[case["behavior"]] = counts.get(case["behavior"], 0) + 1
        print(f"autobahn: {role} role: {len(have)} cases, {counts}", file=sys.stderr)
    print(f"reports in {work}", file=sys.stderr)
    print(f"autobahn: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
