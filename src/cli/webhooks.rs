//! `tenantd webhooks`: subscribe a URL to events (the signing key is printed once), list,
//! show the delivery log, disable, enable, rotate the key, replay, delete.

use std::process::ExitCode;

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::ClientArgs;
use super::client::{Client, ClientError};
use super::output::Format;
use crate::wire::webhooks::{DeliveryPage, Replayed, WebhookList, WebhookView, WebhookWithSecret};

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Send events to a URL; prints the subscription and its signing key (shown this once).
    Create {
        /// An https URL (http and private addresses only if the daemon allows them).
        url: String,
        /// Event types, comma-separated (e.g. tenantd.tenant.ready); default: every type.
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Every subscription.
    List,
    /// A subscription's latest delivery attempts, newest first.
    Deliveries {
        id: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Stop delivering to it.
    Disable { id: String },
    /// Deliver to it again.
    Enable { id: String },
    /// A new signing key (printed once); the old one signs too during the overlap.
    Rotate { id: String },
    /// Deliver again from an event id or an RFC 3339 time.
    Replay {
        id: String,
        #[arg(long)]
        since: String,
    },
    /// Delete it and its signing key.
    Delete { id: String },
}

fn line(w: &WebhookView) -> String {
    let types = if w.types.is_empty() {
        "every type".to_string()
    } else {
        w.types.join(",")
    };
    let state = if w.enabled {
        "enabled".to_string()
    } else {
        format!(
            "disabled ({})",
            w.disabled_reason.as_deref().unwrap_or("no reason")
        )
    };
    format!(
        "{} {} [{types}] {state}, {} pending\n",
        w.id, w.url, w.pending
    )
}

fn show<T: serde::Serialize>(format: Format, value: &T, text: impl FnOnce() -> String) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).expect("serializes")
        ),
        Format::Text => print!("{}", text()),
    }
}

pub async fn run(
    client: &Client,
    args: &ClientArgs,
    command: WebhooksCommand,
) -> Result<ExitCode, ClientError> {
    let out = args.output;
    match command {
        WebhooksCommand::Create {
            url,
            types,
            description,
        } => {
            let body = json!({ "url": url, "types": types, "description": description });
            let w: WebhookWithSecret = client.webhooks(Method::POST, &[], &[], Some(body)).await?;
            show(out, &w, || {
                format!(
                    "{}signing key (shown once): {}\n",
                    line(&w.webhook),
                    w.secret
                )
            });
        }
        WebhooksCommand::List => {
            let list: WebhookList = client.webhooks(Method::GET, &[], &[], None).await?;
            show(out, &list, || list.webhooks.iter().map(line).collect());
        }
        WebhooksCommand::Deliveries { id, limit } => {
            let page: DeliveryPage = client
                .webhooks(
                    Method::GET,
                    &[&id, "deliveries"],
                    &[("limit", limit.to_string())],
                    None,
                )
                .await?;
            show(out, &page, || {
                page.deliveries
                    .iter()
                    .map(|d| {
                        format!(
                            "{} event {} attempt {} {} {} ms\n",
                            d.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                            d.event_id,
                            d.attempt,
                            d.status_code
                                .map(|s| s.to_string())
                                .or_else(|| d.error.clone())
                                .unwrap_or_default(),
                            d.duration_ms
                        )
                    })
                    .collect()
            });
        }
        WebhooksCommand::Disable { id } => {
            let w: WebhookView = client
                .webhooks(Method::POST, &[&id, "disable"], &[], None)
                .await?;
            show(out, &w, || line(&w));
        }
        WebhooksCommand::Enable { id } => {
            let w: WebhookView = client
                .webhooks(Method::POST, &[&id, "enable"], &[], None)
                .await?;
            show(out, &w, || line(&w));
        }
        WebhooksCommand::Rotate { id } => {
            let w: WebhookWithSecret = client
                .webhooks(Method::POST, &[&id, "rotate"], &[], None)
                .await?;
            show(out, &w, || {
                format!(
                    "{}new signing key (shown once): {}\n",
                    line(&w.webhook),
                    w.secret
                )
            });
        }
        WebhooksCommand::Replay { id, since } => {
            let r: Replayed = client
                .webhooks(Method::POST, &[&id, "replay"], &[("since", since)], None)
                .await?;
            show(out, &r, || {
                format!("{} events delivered again\n", r.replayed)
            });
        }
        WebhooksCommand::Delete { id } => {
            client.delete_webhook(&id).await?;
            if let Format::Text = out {
                println!("deleted {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
