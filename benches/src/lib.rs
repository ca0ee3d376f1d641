//! Benchmarks of wsharp beside tokio-tungstenite and fastwebsockets: echo servers built on each
//! peer (`peer_tungstenite`, `peer_fastwebsockets`), a driver that runs them all under
//! `wsharp bench` (the load generator, on wsharp's client) and prints ratios (`suite`), and a
//! criterion bench of
//! frame parsing (`benches/codec.rs`). See `docs/performance.md`.
