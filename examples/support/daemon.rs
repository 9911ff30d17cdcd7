//! Finding the `tenantd` binary a benchmark starts: `--bin`, or the one built beside the
//! example (`target/<profile>/examples/<name>` → `target/<profile>/tenantd`).

use std::path::PathBuf;

pub fn tenantd_binary(given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(bin) = given {
        return Ok(bin.clone());
    }
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("tenantd"))
        .ok_or_else(|| anyhow::anyhow!("cannot find the tenantd binary; pass --bin"))?;
    anyhow::ensure!(
        bin.is_file(),
        "{} is missing: run `cargo build --release --bin tenantd` first, or pass --bin",
        bin.display()
    );
    Ok(bin)
}
