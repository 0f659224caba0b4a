//! The crate's structure, checked mechanically: the modules of `net/src`
//! form no import circle (issue 21). A module is a file, or a directory
//! with its `mod.rs` (its files are one module); it depends on every
//! top-level module it names as `crate::name`; `lib.rs` (the re-exports)
//! and `bin/` (the programs) stand above all and are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module of each source file, and the `crate::` names in it.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "bin" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let deps = graph.entry(top.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                .collect();
            if !name.is_empty() && name != top {
                deps.insert(name);
            }
        }
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((module, path)) = stack.pop() {
        for next in graph.get(&module).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_owned());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn the_modules_of_net_import_each_other_without_a_cycle() {
    let graph = dependencies();
    assert!(graph.contains_key("event_loop") && graph.contains_key("node"));
    // The checker finds a cycle when there is one.
    let mut looped = graph.clone();
    looped
        .entry("wire".to_owned())
        .or_default()
        .insert("node".to_owned());
    assert!(cycle_through(&looped, "node").is_some());
    for module in graph.keys() {
        assert_eq!(cycle_through(&graph, module), None, "{graph:#?}");
    }
}
