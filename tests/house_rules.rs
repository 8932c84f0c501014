//! The "Rules of the house" of README.md, checked against the source: the layers in the order the
//! README lists them (no module imports a layer above its own), and the rules under the list.
//! The layer list is read from the README itself, so the README and this test cannot drift.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Top-level module name -> layer index (0 = top), from README's "Rules of the house".
fn layers_from_readme() -> BTreeMap<String, usize> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let section = readme
        .split("## Rules of the house")
        .nth(1)
        .expect("README.md has a \"## Rules of the house\" section");
    let block = section
        .split("```")
        .nth(1)
        .expect("the section starts with a fenced block listing the layers");
    let mut layers = BTreeMap::new();
    for (index, line) in block.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let names = line.split("  ").next().unwrap_or_default();
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let previous = layers.insert(name.to_string(), index);
            assert!(previous.is_none(), "{name} is listed twice in the layers");
        }
    }
    assert!(
        layers.len() >= 5,
        "too few layers read from README.md: {layers:?}"
    );
    layers
}

/// A source file: its path relative to `src/`, its module path, and its code without comments.
struct Source {
    rel: String,
    module: Vec<String>,
    code: String,
}

impl Source {
    fn top(&self) -> &str {
        &self.module[0]
    }
}

fn sources() -> Vec<Source> {
    let src = Path::new(ROOT).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(&src).ok()?.to_string_lossy().into_owned();
            if rel == "lib.rs" || rel == "main.rs" {
                return None;
            }
            let mut module: Vec<String> = rel
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_string)
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).ok()?;
            Some(Source {
                rel,
                module,
                code: strip_comments(&text),
            })
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code without `//` comments (doc links to other layers are not imports).
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module a file refers to: `crate::x`, `crate::{x, y}` and `super::` chains
/// that climb to the crate root.
fn referenced_modules(source: &Source, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let code = &source.code;
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or_default();
            for item in inner.split(',') {
                found.insert(ident(item.trim()).to_string());
            }
        } else {
            found.insert(ident(rest).to_string());
        }
    }
    for (i, _) in code.match_indices("super::") {
        if i > 0 && code[..i].ends_with("super::") {
            continue; // counted from the first `super::` of the chain
        }
        let mut rest = &code[i..];
        let mut depth = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            depth += 1;
            rest = r;
        }
        if depth >= source.module.len() {
            found.insert(ident(rest).to_string());
        }
    }
    found.retain(|m| known.contains(m));
    found
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

#[test]
fn every_module_is_in_a_layer_and_imports_only_its_own_layer_or_below() {
    let layers = layers_from_readme();
    let sources = sources();
    let tops: BTreeSet<String> = sources.iter().map(|s| s.top().to_string()).collect();
    for top in &tops {
        assert!(
            layers.contains_key(top),
            "module `{top}` is in no layer of README.md's \"Rules of the house\""
        );
    }
    let mut violations = Vec::new();
    for source in &sources {
        let own = layers[source.top()];
        for used in referenced_modules(source, &tops) {
            if layers[&used] < own {
                violations.push(format!(
                    "src/{} ({}) imports `{used}`, a layer above it",
                    source.rel,
                    source.top()
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// Files of `dir` (relative to src/) whose code mentions any of `needles`.
fn offenders(
    sources: &[Source],
    inside: impl Fn(&Source) -> bool,
    needles: &[&str],
) -> Vec<String> {
    sources
        .iter()
        .filter(|s| inside(s))
        .flat_map(|s| {
            needles
                .iter()
                .filter(|n| s.code.contains(**n))
                .map(move |n| format!("src/{} mentions `{n}`", s.rel))
        })
        .collect()
}

#[test]
fn handlers_never_touch_sockets() {
    let found = offenders(
        &sources(),
        |s| s.top() == "api",
        &[
            "tokio::net",
            "TcpStream",
            "TcpListener",
            "AsyncRead",
            "AsyncWrite",
        ],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_log_never_sees_protocol_types() {
    let found = offenders(&sources(), |s| s.top() == "log", &["kafka_protocol"]);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn only_the_cluster_layer_knows_zookeeper() {
    let found = offenders(
        &sources(),
        |s| s.top() != "cluster",
        &["zookeeper_client", "ZkCluster", "zookeeper::"],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn files_are_renamed_and_directories_synced_only_by_the_durable_write_helper() {
    let found = offenders(
        &sources(),
        |s| s.rel != "util/durable.rs",
        &["fs::rename", "std::fs::rename", "fn sync_dir"],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn periodic_tasks_run_only_through_the_task_helper() {
    let found = offenders(
        &sources(),
        |s| s.rel != "util/task.rs",
        &["time::interval", "interval_at("],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_checker_sees_imports_in_every_form() {
    let known: BTreeSet<String> = ["api", "log", "util", "broker"]
        .into_iter()
        .map(String::from)
        .collect();
    let source = Source {
        rel: "log/x/y.rs".into(),
        module: vec!["log".into(), "x".into(), "y".into()],
        code: strip_comments(
            "use crate::{util::clock, api};\nfn f() { super::super::super::broker::go(); }\n\
             // crate::nothing_here\nlet s = crate::log::X;",
        ),
    };
    let found = referenced_modules(&source, &known);
    let expected: BTreeSet<String> = ["util", "api", "broker", "log"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(found, expected);
}
