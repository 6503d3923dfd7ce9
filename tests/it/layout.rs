//! The shape of `src/` that CONTRIBUTING.md promises: no file over about 600
//! lines, and no two files that import each other, directly or around a
//! loop. Imports are read from the text (`crate::a::b`, `super::c`, and the
//! names in their braces), resolved to the file of the longest module path
//! that exists; a module's `pub use` of its own children is not an import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::util::root;

/// The most lines a file under `src/` may have.
const MAX_LINES: usize = 600;

/// Every `.rs` file under `src/`, by module path (`server/gate`; `agent`
/// for `agent/mod.rs`), with its whole text.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
                continue;
            }
            let rel = path.strip_prefix(base).unwrap().with_extension("");
            let mut name = rel.to_string_lossy().into_owned();
            for leaf in ["/mod", "lib", "main"] {
                if let Some(parent) = name.strip_suffix(leaf) {
                    name = parent.trim_end_matches('/').to_owned();
                }
            }
            out.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    let mut out = BTreeMap::new();
    let src = root().join("src");
    walk(&src, &src, &mut out);
    out
}

/// The module a path names: the longest prefix that is a file.
fn resolve(modules: &BTreeMap<String, String>, segments: &[&str]) -> Option<String> {
    (0..=segments.len())
        .rev()
        .map(|n| segments[..n].join("/"))
        .find(|m| modules.contains_key(m))
}

/// What `module` imports outside its tests, as module paths.
fn imports(modules: &BTreeMap<String, String>, module: &str, text: &str) -> BTreeSet<String> {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    let path = regex::Regex::new(r"\b(crate|super)((?:::\w+)*)(?:::\{([^}]*)\})?").unwrap();
    let parent: Vec<&str> = match module.rsplit_once('/') {
        Some((p, _)) => p.split('/').collect(),
        None => Vec::new(),
    };
    let is_mod_rs = modules.keys().any(|m| m.starts_with(&format!("{module}/")));
    let mut out = BTreeSet::new();
    for line in text.lines().map(|l| l.split("//").next().unwrap_or("")) {
        for c in path.captures_iter(line) {
            let mut base: Vec<&str> = match &c[1] {
                "crate" => Vec::new(),
                _ if is_mod_rs => module.split('/').collect::<Vec<_>>()[..].to_vec(),
                _ => parent.clone(),
            };
            if &c[1] == "super" && is_mod_rs {
                base.pop();
            }
            base.extend(c[2].split("::").filter(|s| !s.is_empty()));
            let items: Vec<&str> = match c.get(3) {
                Some(group) => group.as_str().split(',').map(str::trim).collect(),
                None => vec![""],
            };
            for item in items {
                let mut full = base.clone();
                full.extend(
                    item.split(" as ")
                        .next()
                        .unwrap_or("")
                        .split("::")
                        .filter(|s| !s.is_empty() && *s != "self"),
                );
                if let Some(m) = resolve(modules, &full).filter(|m| m != module && !m.is_empty()) {
                    out.insert(m);
                }
            }
        }
    }
    out
}

#[test]
fn no_file_is_over_600_lines() {
    let long: Vec<String> = modules()
        .iter()
        .map(|(m, text)| (m, text.lines().count()))
        .filter(|(_, n)| *n > MAX_LINES)
        .map(|(m, n)| format!("{m}: {n} lines"))
        .collect();
    assert!(long.is_empty(), "split these: {long:?}");
}

#[test]
fn no_two_files_import_each_other() {
    let modules = modules();
    let graph: BTreeMap<&str, BTreeSet<String>> = modules
        .iter()
        .map(|(m, text)| (m.as_str(), imports(&modules, m, text)))
        .collect();
    // A loop is a module that can reach itself.
    let mut loops = Vec::new();
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&str> = graph[start].iter().map(String::as_str).collect();
        while let Some(m) = todo.pop() {
            if m == *start {
                loops.push(*start);
                break;
            }
            if seen.insert(m) {
                todo.extend(graph.get(m).into_iter().flatten().map(String::as_str));
            }
        }
    }
    assert!(
        loops.is_empty(),
        "these modules import themselves around a loop: {loops:?}"
    );
}
