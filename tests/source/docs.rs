//! The documentation names every setting the code reads: each `TENANTD_*` variable in `src/`
//! is in the README's configuration and in the deployment example's environment file.

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
