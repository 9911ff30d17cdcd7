//! The documentation against the code: each `TENANTD_*` variable in `src/` is in the README's
//! configuration and in the deployment example's environment file, each field a tier may set is
//! in the README's `TENANTD_TIERS` row, and every path the guides name in backticks or link to
//! exists.

use std::collections::BTreeSet;
use std::path::Path;

fn settings_in(dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            settings_in(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut rest = text.as_str();
            while let Some(i) = rest.find("\"TENANTD_") {
                let tail = &rest[i + 1..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                    .unwrap_or(tail.len());
                if tail[end..].starts_with('"') {
                    found.insert(tail[..end].to_string());
                }
                rest = &tail[end..];
            }
        }
    }
}

#[test]
fn every_setting_the_code_reads_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut settings = BTreeSet::new();
    settings_in(&root.join("src"), &mut settings);
    assert!(settings.len() > 30, "{settings:?}");
    for doc in ["README.md", "examples/deploy/tenantd.env"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let missing: Vec<&String> = settings
            .iter()
            .filter(|s| !text.contains(s.as_str()))
            .collect();
        assert!(missing.is_empty(), "{doc} does not name {missing:?}");
    }
}

#[test]
fn every_tier_field_is_in_the_readmes_tiers_row() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `TENANTD_TIERS` |"))
        .expect("the README's TENANTD_TIERS row");
    // Every field, optional ones included (serialized as null), of every built-in tier.
    let tiers = serde_json::to_value(tenantd::config::Tiers::defaults()).unwrap();
    let mut fields = BTreeSet::new();
    for tier in tiers.as_object().unwrap().values() {
        fields.extend(tier.as_object().unwrap().keys().cloned());
    }
    assert!(fields.contains("minimum_engine_version"), "{fields:?}");
    let missing: Vec<&String> = fields
        .iter()
        .filter(|f| !row.contains(&format!("`{f}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "the TENANTD_TIERS row does not name {missing:?}"
    );
}

/// The documents whose paths [`every_path_the_docs_name_exists`] checks.
const GUIDES: [&str; 3] = [
    "README.md",
    "localstack/README.md",
    "examples/deploy/README.md",
];

/// File endings that make a bare name in backticks (`step.rs`) a file of the repository.
const FILE_ENDINGS: [&str; 12] = [
    ".rs", ".md", ".toml", ".json", ".py", ".sql", ".txt", ".html", ".env", ".yml", ".yaml", ".sh",
];

/// The text of `doc` outside fenced code blocks.
fn prose(doc: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// What `text` puts in backticks.
fn in_backticks(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The targets of `text`'s Markdown links: `[words](target)`.
fn link_targets(text: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        let tail = &rest[i + 2..];
        let end = tail.find(')').unwrap_or(tail.len());
        targets.push(&tail[..end]);
        rest = &tail[end..];
    }
    targets
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(doc: &str) -> BTreeSet<String> {
    prose(doc)
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

/// Every file name in the repository (not under `target/` or `.git/`).
fn file_names(dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            if name != "target" && name != ".git" {
                file_names(&entry.path(), found);
            }
        } else {
            found.insert(name);
        }
    }
}

/// Whether `name`, as a document in `dir` names it in backticks, is a path of the repository
/// that is missing. A path counts when its first part is an entry of the repository's root,
/// of `src/` (the module names of the layout) or of the document's own folder; a bare name
/// when it ends like a source or document file, and then it must exist somewhere. Routes
/// (`/v1/...`), URLs, placeholders (`<id>`, `{id}`, `$DIR`, `~`), secret names
/// (`saas/tenant/`) and what a build makes (`target/`) are not paths of the repository.
fn missing_path(root: &Path, dir: &Path, names: &BTreeSet<String>, name: &str) -> bool {
    let name = name.trim_start_matches("./");
    if name.is_empty()
        || name.starts_with('/')
        || (name.starts_with('.') && !name.starts_with(".ci/"))
        || name.contains("://")
        || name.contains(|c: char| c.is_whitespace() || "<>{}$*?=&:~".contains(c))
    {
        return false;
    }
    match name.split_once('/') {
        Some((first, _)) => {
            let bases = [dir, root, &root.join("src")];
            let known = bases
                .iter()
                .any(|b| first != "target" && b.join(first).exists());
            known && !bases.iter().any(|b| b.join(name).exists())
        }
        None => FILE_ENDINGS.iter().any(|e| name.ends_with(e)) && !names.contains(name),
    }
}

#[test]
fn every_path_the_docs_name_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names = BTreeSet::new();
    file_names(root, &mut names);
    let mut checked = 0;
    let mut missing = Vec::new();
    for guide in GUIDES {
        let path = root.join(guide);
        let dir = path.parent().unwrap();
        let text = prose(&std::fs::read_to_string(&path).unwrap());
        for name in in_backticks(&text) {
            checked += 1;
            if missing_path(root, dir, &names, name) {
                missing.push(format!("{guide}: `{name}`"));
            }
        }
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            let linked = if file.is_empty() {
                path.clone()
            } else {
                dir.join(file)
            };
            if !linked.exists() {
                missing.push(format!("{guide}: link to {target}"));
            } else if !fragment.is_empty() {
                let doc = std::fs::read_to_string(&linked).unwrap();
                if !anchors(&doc).contains(fragment) {
                    missing.push(format!("{guide}: link to {target} (no such heading)"));
                }
            }
        }
    }
    assert!(checked > 200, "only {checked} names and links read");
    assert!(missing.is_empty(), "no such path: {missing:#?}");
}

#[test]
fn the_path_check_tells_paths_from_other_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names: BTreeSet<String> = ["step.rs".to_string()].into();
    let missing = |name| missing_path(root, root, &names, name);
    assert!(missing("tests/no_such_test.rs"));
    assert!(missing("src/no_such_module/"));
    assert!(missing("workflow/no_such_step.rs"));
    assert!(missing("no_such_file.rs"));
    for fine in [
        "src/lib.rs",
        "workflow/step.rs",
        "step.rs",
        "/v1/tenants/{id}",
        "saas/tenant/",
        "target/tmp/console-screenshots/",
        "$TENANTD_STACK_DIR/tls/ca.pem",
        "http://127.0.0.1:8080",
        "TENANTD_RDS_RATE_SHARE=1/N",
        "Transition::Wait",
    ] {
        assert!(!missing(fine), "{fine}");
    }
    assert_eq!(
        anchor("Schema rollouts (`examples/rollout_bench.rs`)"),
        "schema-rollouts-examplesrollout_benchrs"
    );
}
