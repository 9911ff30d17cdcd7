//! The import graph of `src/`: which source file uses which, read from the code's own `use`
//! items and `crate::`/`super::` paths. Fails when two files import each other, directly or
//! through others (a cycle), or when a layer imports one it must not.
//!
//! The graph is built from text: comments and `#[cfg(test)]` modules are left out, every path is
//! resolved to the longest module prefix that is a file of `src/`. A `mod x;` declaration is not
//! an import; a `pub use x::Y` is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`crate::queue::lease`) → file, relative to `src/`.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut map = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if parts.last().map(String::as_str) == Some("mod") {
                parts.pop();
            }
            let name = match parts.as_slice() {
                [only] if only == "lib" => "crate".to_string(),
                [only] if only == "main" => "main".to_string(),
                _ => format!("crate::{}", parts.join("::")),
            };
            map.insert(name, rel.to_path_buf());
        }
    }
    map
}

/// The code of a file without comments, string contents and its test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if bytes[i..].starts_with(b"/*") {
            while i < bytes.len() && !bytes[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if bytes[i..].starts_with(b"r#\"") {
            i += 3;
            while i < bytes.len() && !bytes[i..].starts_with(b"\"#") {
                i += 1;
            }
            i += 2;
            out.push_str("\"\"");
        } else if bytes[i..].starts_with(b"'\"'") {
            i += 3;
        } else if bytes[i] == b'"' {
            // Skip the string's contents (SQL and messages mention module-like words).
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    out
}

/// Expands `use` trees (`a::{b, c::{d, e}}`) into whole paths.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.trim_end_matches("::*").to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| {
            expand(p).into_iter().map(move |rest| {
                if rest == "self" {
                    prefix.trim_end_matches("::").to_string()
                } else {
                    format!("{prefix}{rest}")
                }
            })
        })
        .collect()
}

/// Every path a file names: its `use` items, expanded, and the `crate::`/`super::`/`tenantd::`
/// paths written in its code.
fn named_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if before_ok {
            let tree = after[..end].trim();
            let tree = tree.split(" as ").next().unwrap_or(tree);
            paths.extend(expand(tree));
        }
        rest = &after[end.min(after.len())..];
    }
    for root in ["crate::", "super::", "tenantd::"] {
        let mut rest = code;
        while let Some(i) = rest.find(root) {
            let before_ok = i == 0 || {
                let b = rest.as_bytes()[i - 1];
                !(b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            };
            let tail = &rest[i..];
            let len = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            if before_ok {
                paths.push(tail[..len].trim_end_matches(':').to_string());
            }
            rest = &tail[len.max(1)..];
        }
    }
    paths
}

/// The file a path leads to, from the file of module `current`.
fn resolve(path: &str, current: &str, mods: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<&str> = match segments.first().copied() {
        Some("crate") | Some("tenantd") => {
            segments.remove(0);
            vec!["crate"]
        }
        Some("super") | Some("self") => current.split("::").collect(),
        _ => return None,
    };
    while let Some(first) = segments.first().copied() {
        match first {
            "super" => {
                base.pop();
                segments.remove(0);
            }
            "self" => {
                segments.remove(0);
            }
            _ => break,
        }
    }
    let mut full: Vec<&str> = base;
    full.extend(segments);
    while !full.is_empty() {
        let name = full.join("::");
        if mods.contains_key(&name) {
            return Some(name);
        }
        full.pop();
    }
    None
}

/// The import graph: module → modules it imports (not itself).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, file) in &mods {
        let text = std::fs::read_to_string(src.join(file)).expect("read source");
        let to: BTreeSet<String> = named_paths(&code(&text))
            .iter()
            .filter_map(|p| resolve(p, name, &mods))
            .filter(|target| target != name && target != "crate")
            .collect();
        edges.insert(name.clone(), to);
    }
    edges
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn imports(edges: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Vec<String> {
    edges
        .iter()
        .filter(|(m, _)| *m == from || m.starts_with(&format!("{from}::")))
        .flat_map(|(m, targets)| {
            targets
                .iter()
                .filter(|t| *t == to || t.starts_with(&format!("{to}::")))
                .map(move |t| format!("{m} -> {t}"))
        })
        .collect()
}

#[test]
fn no_two_source_files_import_each_other_even_through_others() {
    let edges = graph();
    assert!(edges.len() > 20, "found only {} modules", edges.len());
    let found = cycles(&edges);
    assert!(found.is_empty(), "import cycles between files: {found:#?}");
}

#[test]
fn the_settings_import_nothing_from_the_rest_of_the_crate() {
    let edges = graph();
    let outside: Vec<String> = edges
        .iter()
        .filter(|(m, _)| m.as_str() == "crate::config" || m.starts_with("crate::config::"))
        .flat_map(|(m, targets)| {
            targets
                .iter()
                .filter(|t| !(t.as_str() == "crate::config" || t.starts_with("crate::config::")))
                .map(move |t| format!("{m} -> {t}"))
        })
        .collect();
    assert!(outside.is_empty(), "config imports {outside:?}");
}

#[test]
fn only_the_queue_speaks_sql_about_jobs_and_the_api_never_calls_aws() {
    let edges = graph();
    let cloud = imports(&edges, "crate::api", "crate::cloud");
    assert!(cloud.is_empty(), "the API imports the AWS layer: {cloud:?}");
    let cloud = imports(&edges, "crate::ui", "crate::cloud");
    assert!(
        cloud.is_empty(),
        "the console imports the AWS layer: {cloud:?}"
    );
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut outside = Vec::new();
    for (name, file) in modules(&src) {
        if name == "crate::queue" || name.starts_with("crate::queue::") {
            continue;
        }
        let text = std::fs::read_to_string(src.join(&file)).unwrap();
        let text = match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => &text[..i],
            None => &text,
        };
        for table in ["FROM jobs", "UPDATE jobs", "INTO jobs", "job_history"] {
            if text.contains(table) {
                outside.push(format!("{}: {table}", file.display()));
            }
        }
    }
    assert!(
        outside.is_empty(),
        "SQL on jobs outside src/queue: {outside:?}"
    );
}

#[test]
fn use_trees_expand_into_whole_paths() {
    assert_eq!(
        expand("crate::queue::{self, Job, lease::{Lease, claim}}"),
        [
            "crate::queue",
            "crate::queue::Job",
            "crate::queue::lease::Lease",
            "crate::queue::lease::claim"
        ]
    );
    let mods: BTreeMap<String, PathBuf> = [
        ("crate::queue", "queue/mod.rs"),
        ("crate::queue::lease", "queue/lease.rs"),
        ("crate::worker", "worker.rs"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
    .collect();
    assert_eq!(
        resolve("super::lease::claim", "crate::queue::enqueue", &mods).as_deref(),
        Some("crate::queue::lease")
    );
    assert_eq!(
        resolve("crate::queue::Job", "crate::worker", &mods).as_deref(),
        Some("crate::queue")
    );
}
