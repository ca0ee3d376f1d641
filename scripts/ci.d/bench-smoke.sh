#!/usr/bin/env bash
# A short run of every benchmark: each peer starts and every figure is produced. The numbers
# themselves are not judged here (shared CI cores are noise); docs/performance.md records them.
set -euo pipefail
cd "$(dirname "$0")/../.."
target/release/suite --quick --no-build
target/release/broadcast --sessions 500 --rounds 1
cargo bench --locked -p wsharp-bench --bench codec -- --warm-up-time 0.2 --measurement-time 0.3 >/dev/null
cargo bench --locked -p wsharp-bench --bench deflate -- --warm-up-time 0.2 --measurement-time 0.3 | grep compressed
target/release/cluster --sessions 100 --messages 50 --nodes 1,2
