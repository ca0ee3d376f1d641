#!/usr/bin/env bash
# Runs every check and test of the project, installing what the tests need first:
# Debian's chromium, tmux, curl, valgrind and Node.js, and a Python venv (.venv) with the Autobahn runner (kosoku) and the
# websockets library.
# Ends with one line 'N passed, N failed' over all suites.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
log() { printf '\n== %s ==\n' "$*"; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${apt_updated:-}" ]; then apt-get update -qq; apt_updated=1; fi
  apt-get install -y -qq "$@"
}

log "system packages"
# Headless Chromium (Debian's package) for the browser tests.
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium"
  apt_install chromium >/dev/null
fi
export WSHARP_CHROMIUM=/usr/bin/chromium
# tmux drives the CLI in a terminal; curl fetches from `wsharp serve`; valgrind counts the
# benchmark servers' instructions; Node.js runs the `ws` peer of the benchmark suite.
# openssl s_client is a TLS peer of the wss tests; socat relays the Autobahn runner's plain
# connections to and from wsharp's TLS server and client; lighttpd is the Digest-authenticating
# reverse proxy in front of wsharp's echo server in the authentication tests. Squid (with its
# Basic and Digest helpers) is the HTTP CONNECT proxy and microsocks the SOCKS5 proxy of the
# proxy tests, which start their own instances on free loopback ports. Redis (redis-server, with
# redis-cli) is the store of the cluster tests, each of which starts its own on a free port.
for tool in tmux curl valgrind openssl socat lighttpd squid microsocks redis-server; do
  if ! command -v "$tool" >/dev/null && [ ! -x "/usr/sbin/$tool" ]; then
    echo "installing $tool"
    apt_install "$tool" >/dev/null
    # Squid's package starts the stock daemon (port 3128) where policy-rc.d allows it: stop it.
    if [ "$tool" = squid ]; then service squid stop >/dev/null 2>&1 || true; fi
    # Likewise Redis' stock daemon on 6379: the tests start their own.
    if [ "$tool" = redis-server ]; then service redis-server stop >/dev/null 2>&1 || true; fi
  fi
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing nodejs and npm"
  apt_install nodejs npm >/dev/null
fi
# The Node `ws` client of the interop tests, pinned by its package-lock.json.
npm ci --prefix crates/wsharp/tests/node --no-audit --no-fund --silent

log "setting up the Python venv"
if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    rm -rf .venv
    echo "python3 -m venv failed: installing python3-venv"
    apt_install python3-venv
    python3 -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r scripts/requirements.txt
export WSHARP_PYTHON="$root/.venv/bin/python"

log "format, lints, docs"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --locked --quiet

log "feature combinations of wsharp (each builds without warnings)"
for features in none client server http-server deflate client,server client,deflate \
    client,tls client,cookies client,tls-ring server,tls-ring http-server,tls-aws-lc-rs redis; do
  echo "features: $features"
  if [ "$features" = none ]; then set -- --no-default-features; else set -- --no-default-features --features "$features"; fi
  RUSTFLAGS=-Dwarnings cargo check -p wsharp --lib --locked --quiet "$@"
done

RUSTFLAGS=-Dwarnings cargo check -p wsharp-proto --lib --locked --quiet --no-default-features

log "build (release, once)"
cargo build --release --workspace --all-targets --locked

# Each cargo test run is logged and counted: the 'test result:' lines' totals, plus one failure
# for a run that failed without any (a build error, a crashed binary). --no-fail-fast runs every
# test binary even when one fails, so the counts stay whole.
cargo_passed=0
cargo_failed=0
cargo_test() {
  local test_log status p f
  test_log=$(mktemp)
  set +e
  cargo test --no-fail-fast --locked "$@" 2>&1 | tee "$test_log"
  status=${PIPESTATUS[0]}
  set -e
  read -r p f < <(awk '/^test result:/ { p += $4; f += $6 } END { print p+0, f+0 }' "$test_log")
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  echo "cargo test $*: $p passed, $f failed"
  cargo_passed=$((cargo_passed + p))
  cargo_failed=$((cargo_failed + f))
  rm -f "$test_log"
}

log "unit and core tests in the debug profile (debug assertions on)"
cargo_test -p wsharp-proto
cargo_test -p wsharp --lib
# Without permessage-deflate: the core's own tests, and the library's (nothing is negotiated).
cargo_test -p wsharp-proto --lib --no-default-features
cargo_test -p wsharp --lib --no-default-features --features client,server

log "unit, integration and interop tests"
cargo_test --release --workspace

log "Autobahn conformance cases, server and client roles"
ab_log=$(mktemp)
set +e
.venv/bin/python autobahn/run.py --wsharp target/release/wsharp \
  --client target/release/examples/autobahn_client --tls > "$ab_log"
ab_status=$?
set -e
cat "$ab_log"
read -r ab_passed ab_failed < <(awk '/^autobahn: [0-9]+ passed/ { print $2, $4 }' "$ab_log")
ab_passed=${ab_passed:-0}; ab_failed=${ab_failed:-1}
# The exit status counts too: a run that failed without saying so in its summary is one failure.
if [ "$ab_status" -ne 0 ] && [ "$ab_failed" -eq 0 ]; then ab_failed=1; fi

extra_failed=0
for script in scripts/ci.d/*.sh; do
  [ -e "$script" ] || continue
  log "$script"
  if bash "$script"; then echo "$script: ok"; else echo "$script: FAILED"; extra_failed=$((extra_failed + 1)); fi
done

passed=$((cargo_passed + ab_passed))
failed=$((cargo_failed + ab_failed + extra_failed))
log "summary"
echo "cargo test: $cargo_passed passed, $cargo_failed failed; autobahn: $ab_passed passed, $ab_failed failed; extra suites failed: $extra_failed"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
