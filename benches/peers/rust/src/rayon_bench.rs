//! rayon peer of B9: map 10,000,000 f64 in parallel on 2 threads.

mod common;

use std::time::Instant;

use common::*;
use rayon::prelude::*;

fn heavy(x: f64) -> f64 {
    (x.sin() * x.cos()).abs().sqrt() + 1.0
}

fn main() {
    if case() != "parallel_map" {
        dnf(&format!("rayon runs only parallel_map, not {:?}", case()));
    }
    rayon::ThreadPoolBuilder::new().num_threads(2).build_global().unwrap();
    let n = 10_000_000 / divisor();
    let input: Vec<f64> = (0..n).map(|i| i as f64 * 0.001).collect();
    let t = Instant::now();
    let sequential: Vec<f64> = input.iter().copied().map(heavy).collect();
    let sequential_time = t.elapsed();
    let t = Instant::now();
    let parallel: Vec<f64> = input.par_iter().copied().map(heavy).collect();
    let parallel_time = t.elapsed();
    assert_eq!(parallel, sequential);
    println!(
        "B9 parallel-map 2w elements={n} sequential_ms={} parallel_ms={} speedup={:.2}",
        ms(sequential_time),
        ms(parallel_time),
        sequential_time.as_secs_f64() / parallel_time.as_secs_f64()
    );
}
