//! permessage-deflate cost: wsharp's per-message deflate path (flate2 over zlib-rs, level 1,
//! sync flush, tail stripped) beside miniz_oxide (the pure-Rust deflate that flate2 uses by
//! default) at the same level, on text-like and random 16 KiB payloads, compressing and
//! inflating. Prints the compression ratio of each before the timings.
//!
//! `cargo bench -p wsharp-bench --bench deflate -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wsharp_proto::deflate::{Deflater, Inflater};

const LEN: usize = 16 << 10;

/// JSON-like chat traffic: repetitive keys, varying values.
fn text_like() -> Vec<u8> {
    let mut out = String::new();
    let mut i = 0u32;
    while out.len() < LEN {
        out.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user{}\",\"text\":\"message number {} about topic {}\",\"ts\":{}}}\n",
            i % 37,
            i * 7,
            i % 11,
            1_700_000_000 + i * 13
        ));
        i += 1;
    }
    out.truncate(LEN);
    out.into_bytes()
}

fn random() -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn deflate(c: &mut Criterion) {
    for (name, data) in [("text", text_like()), ("random", random())] {
        let ours = Deflater::new(1, 15, true).compress(&data);
        let theirs = miniz_oxide::deflate::compress_to_vec(&data, 1);
        println!(
            "{name}: compressed to {:.1}% by wsharp, {:.1}% by miniz_oxide",
            100.0 * ours.len() as f64 / LEN as f64,
            100.0 * theirs.len() as f64 / LEN as f64
        );
        let mut group = c.benchmark_group(format!("deflate_{name}_16k"));
        group.throughput(Throughput::Bytes(LEN as u64));
        let mut no_takeover = Deflater::new(1, 15, true);
        group.bench_function("wsharp_compress_no_context_takeover", |b| {
            b.iter(|| black_box(no_takeover.compress(black_box(&data))))
        });
        let mut takeover = Deflater::new(1, 15, false);
        group.bench_function("wsharp_compress_context_takeover", |b| {
            b.iter(|| black_box(takeover.compress(black_box(&data))))
        });
        group.bench_function("miniz_oxide_compress", |b| {
            b.iter(|| black_box(miniz_oxide::deflate::compress_to_vec(black_box(&data), 1)))
        });
        let mut inflater = Inflater::new(true);
        group.bench_function("wsharp_inflate", |b| {
            b.iter(|| {
                let mut out = Vec::new();
                inflater
                    .inflate(black_box(&ours), true, &mut out, 1 << 20)
                    .unwrap();
                black_box(out)
            })
        });
        group.bench_function("miniz_oxide_inflate", |b| {
            b.iter(|| {
                black_box(miniz_oxide::inflate::decompress_to_vec(black_box(&theirs)).unwrap())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, deflate);
criterion_main!(benches);
