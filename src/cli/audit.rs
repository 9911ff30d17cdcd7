//! `tenantd audit`: the audit trail, newest first, filtered by tenant, token and time; a table
//! for people, JSON lines (one event a line) with `--output json`. Needs an admin token.

use chrono::{DateTime, Utc};
use clap::Args;

use super::client::{Client, ClientError};
use super::output::{self, Format};
use crate::wire::MAX_PAGE;
use crate::wire::audit::Event;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events about this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only events of the token of this name.
    #[arg(long)]
    pub token: Option<String>,
    /// Only events since this time: RFC 3339 (2026-12-08T10:00:00Z) or a duration ago (2h).
    #[arg(long, value_parser = moment)]
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time: RFC 3339 or a duration ago.
    #[arg(long, value_parser = moment)]
    pub until: Option<DateTime<Utc>>,
    /// At most this many events (pages are followed until then).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Start after this event id (an earlier `more: --cursor`).
    #[arg(long)]
    pub cursor: Option<i64>,
}

/// A time given as RFC 3339 or as a duration before now.
fn moment(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let ago = humantime::parse_duration(text).map_err(|_| {
        format!("expected an RFC 3339 time such as 2026-12-08T10:00:00Z or a duration such as 2h, got {text:?}")
    })?;
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|d| Utc::now().checked_sub_signed(d))
        .ok_or_else(|| format!("{text:?} reaches too far back"))
}

/// Reads events until `limit` (or the end), printing them as it goes; returns the cursor to go
/// on from when more remain.
pub async fn run(client: &Client, args: &AuditArgs, format: Format) -> Result<(), ClientError> {
    let mut filters = Vec::new();
    for (key, value) in [("tenant", &args.tenant), ("token", &args.token)] {
        if let Some(v) = value {
            filters.push((key, v.clone()));
        }
    }
    for (key, value) in [("since", args.since), ("until", args.until)] {
        if let Some(t) = value {
            filters.push((key, t.to_rfc3339()));
        }
    }
    let mut events: Vec<Event> = Vec::new();
    let mut cursor = args.cursor;
    let mut more = None;
    while (events.len() as u32) < args.limit {
        let want = (args.limit - events.len() as u32).min(MAX_PAGE as u32);
        let page = client.list_audit(&filters, want, cursor).await?;
        if format == Format::Json {
            for e in &page.events {
                println!("{}", serde_json::to_string(e).expect("an event serializes"));
            }
        }
        events.extend(page.events);
        more = page.next_cursor;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if format == Format::Text {
        print!("{}", table(&events));
        if let Some(next) = more {
            println!("more: --cursor {next}");
        }
    }
    Ok(())
}

fn table(events: &[Event]) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let about = e
                .tenant
                .clone()
                .or_else(|| e.rollout.map(|r| format!("rollout {r}")))
                .unwrap_or_else(|| "-".into());
            vec![
                output::time(&e.at),
                output::or_dash(e.token.as_deref()).to_string(),
                output::or_dash(e.role.as_deref()).to_string(),
                e.source.clone(),
                e.channel.clone(),
                format!("{} {}", e.method, e.route),
                about,
                match &e.code {
                    Some(code) => format!("{} {code}", e.status),
                    None => e.status.to_string(),
                },
            ]
        })
        .collect();
    output::table(
        &[
            "AT", "TOKEN", "ROLE", "SOURCE", "CHANNEL", "REQUEST", "ABOUT", "STATUS",
        ],
        &rows,
    )
}
