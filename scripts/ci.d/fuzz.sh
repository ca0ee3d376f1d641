#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer and sanitizer coverage on stable Rust (the flags that
# cargo-fuzz passes, less AddressSanitizer, which needs nightly), then runs each for FUZZ_SECONDS
# (default 60) from the seed corpus in corpus/TARGET.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
seconds=${FUZZ_SECONDS:-60}
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
# An explicit target keeps these flags off build scripts, as cargo-fuzz does.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --locked --bins --target "$host"
# libFuzzer writes what it finds into the first corpus directory: a scratch one under target/,
# so the committed seeds in corpus/TARGET are only read. Crashes go to artifacts/ and fail this
# script (libFuzzer's exit status, through pipefail).
for target in frames handshake; do
  found="target/corpus/$target"
  mkdir -p "$found" artifacts
  echo "fuzzing $target for ${seconds}s from $(find "corpus/$target" -type f | wc -l) seeds"
  "target/$host/release/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=artifacts/ "$found" "corpus/$target" 2>&1 | tail -4
done
