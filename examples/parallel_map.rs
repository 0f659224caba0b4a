//! cargo run --release --example parallel_map
//!
//! The seed's parallel map (Erlangen's `example/parallel-map.lisp`): spawn
//! `level` workers attached as monitors, send each a closure over its chunk,
//! collect their exit notifications, and exit with a failed worker's reason.
//! It prints the seed's result for `1+` over `[2, 4, 6, 8, 10, 12, 14]` with
//! level 3, then maps 10,000,000 f64 in parallel and prints the speed-up over
//! a sequential map, once the seed's way (each worker returns its chunk, the
//! chunks are joined) and once writing in place through a [`Gather`] (no
//! join, no copy: what `benches/suite.rs` measures against rayon).

use std::time::Instant;

use erlangen::{Ctx, Down, ExitReason, Gather, Runtime, SpawnOptions};

/// The work a worker is sent: it returns its chunk's start and its results.
type Job<U> = Box<dyn FnOnce() -> (usize, Vec<U>) + Send>;

/// A worker receives one job, runs it, and returns its result: the result
/// travels to the mapper in the worker's exit notification.
fn worker<U: Send + Sync + std::fmt::Debug + 'static>(ctx: &mut Ctx) -> (usize, Vec<U>) {
    match ctx.receive().downcast::<Job<U>>() {
        Ok(job) => job(),
        Err(other) => ctx.exit(ExitReason::other(&format!("worker got {other:?}"))),
    }
}

/// Maps `f` over `input` with `level` workers; exits the calling agent with
/// a worker's reason if one fails.
fn parallel_map<T, U>(ctx: &Ctx, f: fn(&T) -> U, input: Vec<T>, level: usize) -> Vec<U>
where
    T: Send + Sync + 'static,
    U: Send + Sync + std::fmt::Debug + Clone + 'static,
{
    let n = level.min(input.len()).max(1);
    let chunk = input.len() / n;
    let input = std::sync::Arc::new(input);
    let mut workers = Vec::with_capacity(n);
    for i in 0..n {
        let start = i * chunk;
        let end = if i + 1 == n {
            input.len()
        } else {
            start + chunk
        };
        let pid = ctx
            .spawn_with(SpawnOptions::new().monitor(), worker::<U>)
            .unwrap_or_else(|error| ctx.exit(ExitReason::other(&error.to_string())));
        let input = input.clone();
        let job: Job<U> = Box::new(move || (start, input[start..end].iter().map(f).collect()));
        ctx.send(&pid, job);
        workers.push(pid);
    }
    let mut chunks: Vec<(usize, Vec<U>)> = Vec::with_capacity(n);
    for _ in 0..n {
        let down = ctx
            .receive_match(|m| m.is::<Down>())
            .downcast::<Down>()
            .unwrap();
        match down.status.into_value() {
            // A single monitor holds the value alone: move it, no copy.
            Some(value) => match value.take::<(usize, Vec<U>)>() {
                Ok(result) => chunks.push(result),
                Err(shared) => match shared.downcast_ref::<(usize, Vec<U>)>() {
                    Some(result) => chunks.push(result.clone()),
                    None => ctx.exit(ExitReason::other("a worker returned something else")),
                },
            },
            None => ctx.exit(ExitReason::other("a worker failed")),
        }
    }
    chunks.sort_by_key(|(start, _)| *start);
    // Grow the first chunk in place (a large realloc is an mremap) and
    // append the others.
    let mut parts = chunks.into_iter().map(|(_, part)| part);
    let mut output = parts.next().unwrap_or_default();
    output.reserve(input.len() - output.len());
    for mut part in parts {
        output.append(&mut part);
    }
    output
}

/// Maps `f` over `input` with one agent per part of a [`Gather`]: each
/// writes its part of the output in place.
fn parallel_map_in_place<T, U>(ctx: &Ctx, f: fn(&T) -> U, input: Vec<T>, parts: usize) -> Vec<U>
where
    T: Send + Sync + 'static,
    U: Send + 'static,
{
    let input = std::sync::Arc::new(input);
    let output = Gather::<U>::new(input.len(), parts);
    for part in 0..output.parts() {
        let mut writer = output.part(part).expect("each part is claimed once");
        let input = input.clone();
        ctx.spawn_with(SpawnOptions::new().monitor(), move |_| {
            let range = writer.range();
            writer.extend(input[range].iter().map(f));
        })
        .unwrap_or_else(|error| ctx.exit(ExitReason::other(&error.to_string())));
    }
    for _ in 0..output.parts() {
        let down = ctx
            .receive_match(|m| m.is::<Down>())
            .downcast::<Down>()
            .unwrap();
        if !down.status.is_ok() {
            ctx.exit(ExitReason::other(&format!(
                "a part failed: {}",
                down.status
            )));
        }
    }
    match output.into_vec() {
        Ok(output) => output,
        Err((error, _)) => ctx.exit(ExitReason::other(&error.to_string())),
    }
}

fn heavy(x: &f64) -> f64 {
    (x.sin() * x.cos()).abs().sqrt() + 1.0
}

fn main() {
    let rt = match Runtime::new() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            std::process::exit(1);
        }
    };
    let workers = rt.workers();

    // The seed's example: (parallel-map '1+ #(2 4 6 8 10 12 14) :level 3).
    let seed = rt.run(|ctx| parallel_map(ctx, |x: &i64| x + 1, vec![2, 4, 6, 8, 10, 12, 14], 3));
    match seed {
        Ok(result) => println!("{result:?}"),
        Err(reason) => {
            eprintln!("parallel map failed: {reason}");
            std::process::exit(1);
        }
    }

    // 10,000,000 f64, sequential against parallel.
    const N: usize = 10_000_000;
    let input: Vec<f64> = (0..N).map(|i| i as f64 * 0.001).collect();
    let started = Instant::now();
    let sequential: Vec<f64> = input.iter().map(heavy).collect();
    let sequential_time = started.elapsed();

    let parallel_input = input.clone();
    let started = Instant::now();
    let parallel = rt.run(move |ctx| parallel_map(ctx, heavy, parallel_input, workers));
    let parallel_time = started.elapsed();
    let parallel = match parallel {
        Ok(parallel) => parallel,
        Err(reason) => {
            eprintln!("parallel map failed: {reason}");
            std::process::exit(1);
        }
    };
    assert_eq!(parallel, sequential, "parallel and sequential maps agree");
    println!(
        "mapped {N} f64 on {workers} workers: sequential {:.1} ms, parallel {:.1} ms, speed-up {:.2}x",
        sequential_time.as_secs_f64() * 1e3,
        parallel_time.as_secs_f64() * 1e3,
        sequential_time.as_secs_f64() / parallel_time.as_secs_f64()
    );

    let started = Instant::now();
    let in_place = rt.run(move |ctx| parallel_map_in_place(ctx, heavy, input, 4 * workers));
    let in_place_time = started.elapsed();
    match in_place {
        Ok(in_place) => assert_eq!(in_place, sequential, "in-place and sequential maps agree"),
        Err(reason) => {
            eprintln!("parallel map in place failed: {reason}");
            std::process::exit(1);
        }
    }
    println!(
        "in place through a Gather: parallel {:.1} ms, speed-up {:.2}x",
        in_place_time.as_secs_f64() * 1e3,
        sequential_time.as_secs_f64() / in_place_time.as_secs_f64()
    );
}
