//! Benchmark of `Store::metrics` over 100,000 generated runs (in progress).

fn main() {}
