//! The import graph of `src/`: which source file uses which, read from the code's own `use`
//! items and `crate::`/`super::` paths, and the same graph between the crate's top-level modules.
//! Fails when two files or two modules import each other, directly or through others (a cycle),
//! when a module imports one of its own layer or a higher one (the layers as `src/lib.rs` states
//! them, which the README's Layout table must repeat), or when a statement about a table of the
//! control schema is outside the table's owner.
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
fn the_api_and_the_console_never_call_aws() {
    let edges = graph();
    let cloud = imports(&edges, "crate::api", "crate::cloud");
    assert!(cloud.is_empty(), "the API imports the AWS layer: {cloud:?}");
    let cloud = imports(&edges, "crate::ui", "crate::cloud");
    assert!(
        cloud.is_empty(),
        "the console imports the AWS layer: {cloud:?}"
    );
}

#[test]
fn the_cli_knows_the_api_by_its_bodies_and_the_tenant_id_only() {
    let edges = module_graph();
    let cli = &edges["cli"];
    let inner: Vec<&String> = cli
        .iter()
        .filter(|m| !["wire", "tenant_id"].contains(&m.as_str()))
        .collect();
    assert!(
        inner.is_empty(),
        "the CLI imports more than the API's bodies (crate::wire) and the tenant id's rule: {inner:?}"
    );
}

/// The top-level module a module belongs to (`crate::queue::lease` → `queue`).
fn top(module: &str) -> &str {
    let mut parts = module.split("::");
    match parts.next() {
        Some("crate") => parts.next().unwrap_or("lib"),
        Some(other) => other,
        None => "",
    }
}

/// The import graph between top-level modules (without self-edges and the crate root).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in graph() {
        let from = top(&from).to_string();
        let entry = out.entry(from.clone()).or_default();
        for to in targets {
            let to = top(&to);
            if to != from && to != "lib" {
                entry.insert(to.to_string());
            }
        }
    }
    out.remove("lib");
    out
}

/// The layers as `src/lib.rs` states them, lowest first: its `//! N. \`a\`, \`b\`: ...` lines.
fn layers() -> Vec<Vec<String>> {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("read src/lib.rs");
    let mut out = Vec::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//! ") else {
            continue;
        };
        let Some((number, rest)) = rest.split_once(". ") else {
            continue;
        };
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        assert_eq!(
            number.parse::<usize>().unwrap(),
            out.len() + 1,
            "src/lib.rs numbers its layers in order: {line}"
        );
        let names = rest.split(':').next().unwrap_or("");
        out.push(backticked(names));
    }
    out
}

/// The names between backticks in `text`, without a trailing `/` or `.rs`.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|n| n.trim_end_matches('/').trim_end_matches(".rs").to_string())
        .collect()
}

#[test]
fn no_two_modules_import_each_other_even_through_others() {
    let edges = module_graph();
    assert!(edges.len() > 10, "found only {} modules", edges.len());
    let found = cycles(&edges);
    assert!(
        found.is_empty(),
        "import cycles between modules: {found:#?}"
    );
}

#[test]
fn every_module_imports_only_modules_of_lower_layers() {
    let layers = layers();
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, names)| names.iter().map(move |n| (n.as_str(), i)))
        .collect();
    let edges = module_graph();
    let unplaced: Vec<&String> = edges
        .keys()
        .filter(|m| !layer_of.contains_key(m.as_str()))
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules src/lib.rs places in no layer: {unplaced:?}"
    );
    let gone: Vec<&&str> = layer_of
        .keys()
        .filter(|m| !edges.contains_key(**m))
        .collect();
    assert!(
        gone.is_empty(),
        "src/lib.rs names modules that do not exist: {gone:?}"
    );
    let mut wrong = Vec::new();
    for (from, targets) in &edges {
        for to in targets {
            if layer_of[to.as_str()] >= layer_of[from.as_str()] {
                wrong.push(format!(
                    "{from} (layer {}) imports {to} (layer {})",
                    layer_of[from.as_str()] + 1,
                    layer_of[to.as_str()] + 1
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers: {wrong:#?}");
}

#[test]
fn the_readme_layout_table_lists_the_layers_of_lib_rs() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let section = readme
        .split("### Layout")
        .nth(1)
        .expect("README.md has a Layout section");
    let rows: Vec<Vec<String>> = section
        .lines()
        .skip_while(|l| !l.starts_with("|---"))
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|row| backticked(row.split('|').nth(1).unwrap_or("")))
        .collect();
    assert_eq!(
        rows,
        layers(),
        "README.md's Layout table (first column, one row per layer) differs from src/lib.rs"
    );
}

/// Every table of the control schema and its owner: the file (or folder, ending in `/`) of
/// `src/` that alone may write it, and the only place outside the store layer that may read it.
const OWNERS: &[(&str, &str)] = &[
    ("jobs", "queue/"),
    ("job_history", "queue/"),
    ("tenants", "store/tenants"),
    ("rollouts", "store/rollouts.rs"),
    ("rollout_tenants", "store/rollout_tenants.rs"),
    ("pool_standbys", "store/standbys.rs"),
    ("final_snapshots", "store/snapshots.rs"),
    ("audit_events", "store/audit.rs"),
    ("events", "store/events.rs"),
    ("ui_sessions", "store/sessions.rs"),
    ("maintenance_leadership", "store/leadership.rs"),
    ("instance_poller", "store/leadership.rs"),
];

/// The tables the control schema's migrations create.
fn tables() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("state-migrations");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("read state-migrations") {
        let sql = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut rest = sql.as_str();
        while let Some(i) = rest.find("CREATE TABLE ") {
            let tail = rest[i + "CREATE TABLE ".len()..].trim_start();
            let tail = tail.strip_prefix("IF NOT EXISTS ").unwrap_or(tail);
            let name: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
            rest = &rest[i + 1..];
        }
    }
    out
}

/// The contents of the string literals of a file's code (comments and its test module left
/// out): where its SQL is.
fn strings(text: &str) -> Vec<String> {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let bytes = text.as_bytes();
    let mut out = Vec::new();
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
            let start = i + 3;
            i = start;
            while i < bytes.len() && !bytes[i..].starts_with(b"\"#") {
                i += 1;
            }
            out.push(text[start..i.min(text.len())].to_string());
            i += 2;
        } else if bytes[i..].starts_with(b"'\"'") {
            i += 3;
        } else if bytes[i] == b'"' {
            i += 1;
            let start = i;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            out.push(text[start..i.min(text.len())].to_string());
            i += 1;
        } else {
            i += 1;
        }
    }
    out
}

/// Whether `sql` has `keyword` followed by the table `table` (a whole word).
fn names(sql: &str, keyword: &str, table: &str) -> bool {
    let upper = sql.to_ascii_uppercase();
    let mut from = 0;
    while let Some(i) = upper[from..].find(keyword) {
        let at = from + i;
        let before_ok = at == 0 || !upper.as_bytes()[at - 1].is_ascii_alphanumeric();
        let rest = sql[at + keyword.len()..].trim_start();
        let rest = rest.strip_prefix("ONLY ").unwrap_or(rest);
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if before_ok && word == table {
            return true;
        }
        from = at + keyword.len();
    }
    false
}

#[test]
fn every_table_has_an_owner_in_the_store_or_the_queue() {
    let owned: BTreeSet<String> = OWNERS.iter().map(|(t, _)| t.to_string()).collect();
    assert_eq!(
        tables(),
        owned,
        "the tables of state-migrations/ and the owners this test knows differ"
    );
}

#[test]
fn statements_about_a_table_are_in_its_owner_and_only_it_writes_the_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut outside = Vec::new();
    for file in modules(&src).into_values() {
        let path = file.to_string_lossy().replace('\\', "/");
        let store_layer = path.starts_with("store/") || path.starts_with("queue/");
        let text = std::fs::read_to_string(src.join(&file)).unwrap();
        for sql in strings(&text) {
            for (table, owner) in OWNERS {
                if path.starts_with(owner) {
                    continue;
                }
                let prune = format!("prune_{table}(");
                let writes = ["INSERT INTO", "UPDATE", "DELETE FROM", "TRUNCATE"]
                    .iter()
                    .any(|k| names(&sql, k, table))
                    || sql.contains(&prune);
                let reads = ["FROM", "JOIN"].iter().any(|k| names(&sql, k, table));
                if writes {
                    outside.push(format!("{path} writes {table} (its owner: src/{owner})"));
                } else if reads && !store_layer {
                    outside.push(format!("{path} reads {table} (its owner: src/{owner})"));
                }
            }
        }
    }
    assert!(
        outside.is_empty(),
        "statements outside their table's owner: {outside:#?}"
    );
}

#[test]
fn statements_are_found_where_they_are() {
    let text = "fn f() { q(\"UPDATE tenants SET x = 1\"); q(r#\"SELECT * FROM jobs j\"#); }\n// FROM rollouts";
    let found = strings(text);
    assert_eq!(found, ["UPDATE tenants SET x = 1", "SELECT * FROM jobs j"]);
    assert!(names(&found[0], "UPDATE", "tenants"));
    assert!(!names(&found[0], "UPDATE", "tenant"));
    assert!(names(&found[1], "FROM", "jobs"));
    assert!(!names("SELECT * FROM jobs_view", "FROM", "jobs"));
    assert!(!names("DELETE FROM rollout_tenants", "FROM", "rollouts"));
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
