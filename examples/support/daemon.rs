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

/// What every benchmark's daemon is given on the local stack besides its own settings: the
/// example tenant migrations, plain TCP to tenant databases, its `Environment` tag, a
/// maintenance window clear of the backup window, JSON logs at warn.
pub fn local_stack_settings(environment: &'static str) -> [(&'static str, &'static str); 6] {
    [
        (
            "TENANTD_TENANT_MIGRATIONS",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tenant-migrations"),
        ),
        ("TENANTD_TENANT_DB_TLS", "disable"),
        ("TENANTD_ENVIRONMENT", environment),
        // The emulator counts windows that merely touch as overlapping.
        ("TENANTD_MAINTENANCE_WINDOW", "sun:05:00-sun:06:00"),
        ("TENANTD_LOG_FORMAT", "json"),
        ("RUST_LOG", "warn"),
    ]
}
