//! The command line's reader of `GET /v1/events` as Server-Sent Events: the stream of one
//! tenant's events from now on, each read as its CloudEvents document. `--wait` wakes on them
//! instead of polling; a stream that ends or breaks reads as `None`, and the caller polls.

use std::time::Duration;

use reqwest::header::ACCEPT;

use crate::wire::events::CloudEvent;

/// Longest a stream stays open (the client's own 30 s limit is for single answers).
pub const STREAM_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// An open stream.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// Opens the stream of `request` (to `/v1/events`); `None` when the API does not answer
    /// with one (an older server, an error): the caller polls then.
    pub async fn open(request: reqwest::RequestBuilder) -> Option<EventStream> {
        let response = request
            .header(ACCEPT, "text/event-stream")
            .timeout(STREAM_LIMIT)
            .send()
            .await
            .ok()?;
        let is_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        (response.status().is_success() && is_stream).then(|| EventStream {
            response,
            buffer: String::new(),
        })
    }

    /// The next event; `None` once the stream ended or broke.
    pub async fn next(&mut self) -> Option<CloudEvent> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&frame) {
                    return Some(event);
                }
            }
            let chunk = self.response.chunk().await.ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// The event of one frame; `None` for a comment (the keep-alive) or a frame without data.
fn parse(frame: &str) -> Option<CloudEvent> {
    let data: Vec<&str> = frame
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    if data.is_empty() {
        return None;
    }
    serde_json::from_str(&data.join("\n")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_as_its_event_and_a_comment_as_none() {
        let frame = "id: 7\ndata: {\"specversion\":\"1.0\",\"id\":\"7\",\"source\":\"tenantd/x\",\
                     \"type\":\"tenantd.tenant.ready\",\"subject\":\"acme\",\
                     \"time\":\"2026-01-01T00:00:00Z\",\"datacontenttype\":\"application/json\",\
                     \"data\":{}}\n\n";
        let event = parse(frame).expect("an event");
        assert_eq!(
            (event.id.as_str(), event.kind.as_str()),
            ("7", "tenantd.tenant.ready")
        );
        assert_eq!(parse(":\n\n"), None);
    }
}
