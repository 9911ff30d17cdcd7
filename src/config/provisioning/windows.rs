//! The backup and maintenance windows every tenant instance gets, checked not to overlap as
//! RDS requires.

use super::invalid;
use crate::config::env::{ConfigError, Env};

/// The settings of this group, moved into [`super::ProvisioningSettings`] by its `load`.
pub(super) struct Windows {
    pub backup_window: String,
    pub maintenance_window: String,
}

pub(super) fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Windows, ConfigError> {
    let backup_window = env.string("TENANTD_BACKUP_WINDOW", "03:00-04:00");
    let backup = parse_window(&backup_window, false).ok_or_else(|| {
        invalid(
            "TENANTD_BACKUP_WINDOW",
            format!("expected hh:mm-hh:mm (UTC) of at least 30 minutes, got {backup_window:?}"),
        )
    })?;
    let maintenance_window = env.string("TENANTD_MAINTENANCE_WINDOW", "sun:04:00-sun:05:00");
    let maintenance = parse_window(&maintenance_window, true).ok_or_else(|| {
        invalid(
            "TENANTD_MAINTENANCE_WINDOW",
            format!(
                "expected ddd:hh:mm-ddd:hh:mm (UTC) of at least 30 minutes, got {maintenance_window:?}"
            ),
        )
    })?;
    if windows_overlap(backup, maintenance) {
        return Err(invalid(
            "TENANTD_MAINTENANCE_WINDOW",
            format!("{maintenance_window} overlaps the backup window {backup_window}"),
        ));
    }
    Ok(Windows {
        backup_window,
        maintenance_window,
    })
}

const WEEK: u32 = 7 * 1440;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A window as (start, length) in minutes: from midnight for a daily window, from Monday
/// midnight for a weekly one. `None` unless well-formed and at least 30 minutes long.
fn parse_window(s: &str, weekly: bool) -> Option<(u32, u32)> {
    let point = |p: &str| -> Option<u32> {
        let (day, time) = if weekly {
            let (d, t) = p.split_once(':')?;
            (
                DAYS.iter().position(|x| x.eq_ignore_ascii_case(d))? as u32,
                t,
            )
        } else {
            (0, p)
        };
        let (h, m) = time.split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && time.len() == 5).then_some(day * 1440 + h * 60 + m)
    };
    let (a, b) = s.split_once('-')?;
    let (start, end) = (point(a)?, point(b)?);
    let period = if weekly { WEEK } else { 1440 };
    let len = (end + period - start) % period;
    (len >= 30).then_some((start, len))
}

/// Whether a daily backup window and a weekly maintenance window share a minute (windows
/// that only touch do not).
fn windows_overlap(backup: (u32, u32), maintenance: (u32, u32)) -> bool {
    (0..8).any(|day| {
        let b_start = day * 1440 + backup.0;
        let (m_start, m_len) = maintenance;
        [m_start, m_start + WEEK]
            .iter()
            .any(|&m| b_start < m + m_len && m < b_start + backup.1)
    })
}
