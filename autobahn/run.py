#!/usr/bin/env python3
"""Runs the Autobahn conformance cases (through kosoku) against wsharp in both roles and
compares every case's verdict with expected-results.json.

Server role: kosoku's fuzzing client drives `wsharp echo`.
Client role: examples/autobahn_client follows kosoku's fuzzing server.

Each case's `behavior` and `behaviorClose` must equal the ones expected-results.json records
for it, exactly: an OK that turns NON-STRICT or INFORMATIONAL is a difference like a FAILED.
A case the reports lack (kosoku skipped it, a chunk hung, the client died) is a difference, and
so is a case the file does not list. When a case appears more than once in the reports (kosoku
files a case that could not run under HOST:PORT, beside the server's own agent name), the worst
of its results counts. An expected value may also be a list of the values accepted for a case
whose result is known to vary; the file lists none today.

With --tls, groups 1-7 also run over TLS in both roles: kosoku has no TLS, so socat relays
between it and wsharp's wss server and client (certificates made by openssl for the run), and
every case must get the verdict it gets without TLS.

Usage: run.py --wsharp target/release/wsharp --client target/release/examples/autobahn_client
              [--kosoku .venv/bin/kosoku] [--role server|client|both] [--tls] [--update]
Ends with a line 'autobahn: N passed, N failed'; exits non-zero on any difference, and when a
run did not complete (a chunk hit its timeout, the server under test died).
"""

import argparse
import fnmatch
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
# The TLS pass (--tls): kosoku speaks no TLS, so socat relays between it and wsharp's wss
# server and client; the framing, control and UTF-8 groups run, in both roles.
TLS_GROUPS = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*"]
TLS_TIMEOUT = 600


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


# From best to worst; a value not listed here ranks after all of them.
BEHAVIOR_RANK = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "WRONG CODE", "UNCLEAN",
                 "FAILED BY CLIENT", "FAILED", "ERROR"]
VERDICT_RANK = ["pass", "unimplemented", "fail"]


def rank(value: str) -> int:
    return BEHAVIOR_RANK.index(value) if value in BEHAVIOR_RANK else len(BEHAVIOR_RANK)


def badness(case: dict) -> tuple:
    return (VERDICT_RANK.index(case["verdict"]), rank(case["behavior"]), rank(case["behaviorClose"]))


def merge(into: dict, case_id: str, case: dict) -> None:
    """Adds one report of a case, keeping the worst when the case was reported before."""
    entry = {"behavior": str(case.get("behavior", "MISSING")),
             "behaviorClose": str(case.get("behaviorClose", "MISSING"))}
    entry["verdict"] = verdict(entry)
    if case_id not in into or badness(entry) > badness(into[case_id]):
        into[case_id] = entry


def read_index(outdir: Path) -> dict:
    """Merges every agent's cases (kosoku files ERROR cases under HOST:PORT), keeping the worst
    result of a case reported more than once."""
    index = outdir / "index.json"
    if not index.exists():
        print(f"autobahn: no report in {outdir}", file=sys.stderr)
        return {}
    merged: dict = {}
    for cases in json.loads(index.read_text()).values():
        for case_id, case in cases.items():
            merge(merged, case_id, case)
    return merged


def matches(want, have: str) -> bool:
    """Whether a reported value is the expected one (or one of the expected list)."""
    return have in want if isinstance(want, list) else have == want


def case_key(case_id: str) -> list:
    return [int(p) if p.isdigit() else 0 for p in case_id.split(".")]


def compare(role: str, want: dict, have: dict) -> tuple[int, list[str]]:
    """Compares one role's results with the expected ones: (cases as expected, differences)."""
    same = 0
    differences = []
    for case_id in sorted(set(want) | set(have), key=case_key):
        w, h = want.get(case_id), have.get(case_id)
        if w is None:
            differences.append(f"{role} {case_id}: not in {EXPECTED.name}, got "
                               f"{h['behavior']}/{h['behaviorClose']}")
        elif h is None:
            differences.append(f"{role} {case_id}: expected {w['behavior']}/{w['behaviorClose']}, "
                               f"missing from the reports")
        elif matches(w["behavior"], h["behavior"]) and matches(w["behaviorClose"], h["behaviorClose"]):
            same += 1
        else:
            differences.append(f"{role} {case_id}: expected {w['behavior']}/{w['behaviorClose']}, "
                               f"got {h['behavior']}/{h['behaviorClose']}")
    return same, differences


def kosoku_args(includes, excludes):
    args = []
    for g in includes:
        args += ["-i", g]
    for g in excludes:
        args += ["-x", g]
    return args


def run_server_role(kosoku: str, wsharp: str, work: Path, problems: list[str]) -> dict:
    results: dict = {}
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
                problems.append(f"server chunk {inc or 'all'} hit its {limit} s timeout")
            print(f"autobahn: server chunk {inc or 'all'} took {time.time() - started:.1f} s", file=sys.stderr)
            if server.poll() is not None:
                problems.append(f"wsharp echo exited with {server.returncode} during chunk {inc or 'all'}")
            for case_id, case in read_index(out).items():
                merge(results, case_id, case)
        finally:
            if server.poll() is None:
                server.terminate()
                server.wait(10)
    return results


def make_certificates(work: Path) -> tuple[Path, Path, Path]:
    """A test CA and a leaf for localhost and 127.0.0.1, with openssl: (ca, leaf, key)."""
    ca, ca_key, leaf, key, csr, ext = (work / n for n in
                                       ("ca.pem", "ca.key", "leaf.pem", "leaf.key", "leaf.csr", "leaf.ext"))
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=wsharp autobahn CA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                    "-keyout", str(ca_key), "-out", str(ca)], **quiet)
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(csr)], **quiet)
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                   "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n")
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
                    "-days", "2", "-out", str(leaf), "-extfile", str(ext)], **quiet)
    return ca, leaf, key


def run_tls(kosoku: str, wsharp: str, client: str, work: Path, problems: list[str]) -> dict:
    """Both roles over TLS through socat relays, TLS_GROUPS only: {role: results}."""
    ca, leaf, key = make_certificates(work)
    results = {}
    # Server role: kosoku -> socat (plain in, TLS out, verifying the server) -> wsharp echo.
    server_port, relay_port = free_port(), free_port()
    server = subprocess.Popen([wsharp, "-q", "echo", "--listen", f"127.0.0.1:{server_port}",
                               "--tls-cert", str(leaf), "--tls-key", str(key)])
    relay = subprocess.Popen(["socat", "-lf", str(work / "socat-server.log"), f"TCP-LISTEN:{relay_port},bind=127.0.0.1,reuseaddr,fork",
                              f"OPENSSL:127.0.0.1:{server_port},cafile={ca},commonname=localhost"])
    try:
        wait_port(server_port, time.time() + 10)
        wait_port(relay_port, time.time() + 10)
        out = work / "tls-server"
        try:
            subprocess.run([kosoku, "-m", "fuzzingclient", f"127.0.0.1:{relay_port}", "-o", str(out),
                            "-p", "4"] + kosoku_args(TLS_GROUPS, []), timeout=TLS_TIMEOUT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        except subprocess.TimeoutExpired:
            problems.append(f"the TLS server role hit its {TLS_TIMEOUT} s timeout")
        results["server"] = read_index(out)
    finally:
        for p in (relay, server):
            if p.poll() is None:
                p.terminate()
                p.wait(10)
    # Client role: wsharp's client over wss -> socat (TLS in with the leaf, plain out) -> kosoku.
    runner_port, relay_port = free_port(), free_port()
    out = work / "tls-client"
    runner = subprocess.Popen([kosoku, "-m", "fuzzingserver", f"127.0.0.1:{runner_port}", "-o", str(out)]
                              + kosoku_args(TLS_GROUPS, []), stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT)
    relay = subprocess.Popen(["socat", "-lf", str(work / "socat-client.log"), f"OPENSSL-LISTEN:{relay_port},bind=127.0.0.1,reuseaddr,fork,"
                              f"cert={leaf},key={key},verify=0", f"TCP:127.0.0.1:{runner_port}"])
    try:
        wait_port(runner_port, time.time() + 20)
        wait_port(relay_port, time.time() + 10)
        try:
            subprocess.run([client, f"wss://localhost:{relay_port}", "wsharp"], timeout=TLS_TIMEOUT,
                           env={**os.environ, "WSHARP_AUTOBAHN_CA": str(ca)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            problems.append(f"the TLS client role hit its {TLS_TIMEOUT} s timeout")
        try:
            runner.wait(60)
        except subprocess.TimeoutExpired:
            problems.append("the fuzzing server of the TLS pass did not finish its reports")
        results["client"] = read_index(out)
    finally:
        for p in (relay, runner):
            if p.poll() is None:
                p.terminate()
                p.wait(10)
    return results


def run_client_role(kosoku: str, client: str, work: Path, problems: list[str]) -> dict:
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
            problems.append(f"the client run hit its {CLIENT_TIMEOUT} s timeout")
        try:
            runner.wait(60)
        except subprocess.TimeoutExpired:
            problems.append("the fuzzing server did not finish its reports")
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
    ap.add_argument("--tls", action="store_true",
                    help="also run groups 1-7 over TLS in both roles, through socat relays")
    args = ap.parse_args()
    for tool in (args.kosoku, args.wsharp, args.client):
        if not os.access(tool, os.X_OK):
            print(f"autobahn: {tool} is missing or not executable", file=sys.stderr)
            print("autobahn: 0 passed, 1 failed")
            return 1
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="autobahn-"))
    work.mkdir(parents=True, exist_ok=True)
    roles = ["server", "client"] if args.role == "both" else [args.role]
    problems: list[str] = []
    got = {}
    if "server" in roles:
        got["server"] = run_server_role(args.kosoku, args.wsharp, work, problems)
    if "client" in roles:
        got["client"] = run_client_role(args.kosoku, args.client, work, problems)
    tls_got = run_tls(args.kosoku, args.wsharp, args.client, work, problems) if args.tls else {}

    if args.update:
        expected = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
        expected.update({role: dict(sorted(cases.items(), key=lambda kv: case_key(kv[0])))
                         for role, cases in got.items()})
        EXPECTED.write_text(json.dumps(expected, indent=1) + "\n")
        print(f"autobahn: wrote {EXPECTED.name}", file=sys.stderr)
    expected = json.loads(EXPECTED.read_text())

    passed = failed = 0
    for role in roles:
        want, have = expected.get(role, {}), got[role]
        if not want:
            problems.append(f"{EXPECTED.name} lists no case for the {role} role")
        same, differences = compare(role, want, have)
        passed += same
        failed += len(differences)
        for line in differences:
            print(f"autobahn: {line}")
        counts: dict = {}
        for case in have.values():
            counts[case["behavior"]] = counts.get(case["behavior"], 0) + 1
        print(f"autobahn: {role} role: {len(have)} cases, {counts}", file=sys.stderr)
    for role, have in tls_got.items():
        # Over TLS, the same verdicts as without, for the groups run.
        want = {c: v for c, v in expected.get(role, {}).items()
                if any(fnmatch.fnmatch(c, g) for g in TLS_GROUPS)}
        same, differences = compare(f"{role} over TLS", want, have)
        passed += same
        failed += len(differences)
        for line in differences:
            print(f"autobahn: {line}")
        print(f"autobahn: {role} role over TLS: {len(have)} cases", file=sys.stderr)
    for problem in problems:
        print(f"autobahn: {problem}")
    failed += len(problems)
    print(f"reports in {work}", file=sys.stderr)
    print(f"autobahn: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
