//! The layout holds: dependencies between the workspace's crates point down the layers only (no lower crate
//! depends on a higher one, no wing on another wing), and the crate graph drawn in docs/architecture.md is the one
//! `cargo metadata` reads from the manifests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The layers, lowest first. A crate may depend only on crates of lower layers.
const LAYERS: &[(&str, u8)] = &[
    ("bitdust-core", 0),
    ("bitdust-store", 0),
    // the API contract: types only, shared by the runtime, the wings and the CLI
    ("bitdust-api", 0),
    ("bitdust-net", 1),
    ("bitdust-node", 2),
    // feature wings: none depends on another (sharing may use storage and messages: add it here explicitly)
    ("bitdust-storage", 3),
    ("bitdust-messages", 3),
    // what composes wings: the user's program, the test kit, the lab
    ("bitdust-testkit", 3),
    ("bitdust", 4),
    ("bitdust-lab", 5),
];

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Normal (not dev, not build) dependencies between workspace crates, from `cargo metadata`.
fn workspace_graph() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root())
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages.iter().filter_map(|p| p["name"].as_str().map(String::from)).collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str())
                .filter(|d| names.contains(*d))
                .map(String::from)
                .collect();
            (p["name"].as_str().unwrap_or_default().to_string(), deps)
        })
        .collect()
}

/// The crate graph drawn in docs/architecture.md: the lines `crate: dep, dep` of its `text crate-graph` block.
fn documented_graph() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).expect("read docs/architecture.md");
    let block = doc
        .split("```text crate-graph\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/architecture.md has a ```text crate-graph block");
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, deps) = l.split_once(':').unwrap_or((l, ""));
            let deps = deps.split(',').map(str::trim).filter(|d| !d.is_empty()).map(String::from).collect();
            (name.trim().to_string(), deps)
        })
        .collect()
}

#[test]
fn dependencies_point_down_the_layers() {
    let rank: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let graph = workspace_graph();
    for (krate, deps) in &graph {
        let Some(&r) = rank.get(krate.as_str()) else {
            panic!("crate {krate} has no layer: add it to LAYERS here and to docs/architecture.md");
        };
        for d in deps {
            let dr = rank[d.as_str()];
            assert!(dr < r, "{krate} (layer {r}) depends on {d} (layer {dr}): dependencies must point down");
        }
    }
}

#[test]
fn the_documented_crate_graph_is_the_real_one() {
    let real = workspace_graph();
    let documented = documented_graph();
    assert_eq!(documented, real, "docs/architecture.md's crate graph differs from the manifests");
}
