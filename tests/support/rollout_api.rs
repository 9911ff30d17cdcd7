//! A client for a running daemon's `/v1/rollouts`, for the tests that drive rollouts of any kind
//! through the API as an operator would.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::wait_for;

/// The token [`super::fleet::daemon_env`] gives the daemons.
pub const TOKEN: &str = "scale-test-token-0123456789abcdefgh";

pub struct RolloutApi {
    pub url: String,
    http: reqwest::Client,
}

impl RolloutApi {
    pub fn new(url: &str) -> Self {
        RolloutApi {
            url: url.to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn create(&self, body: Value) -> (u16, Value) {
        self.call(Method::POST, "/v1/rollouts", Some(body)).await
    }

    pub async fn rollout(&self, id: &str) -> Value {
        let (status, body) = self
            .call(Method::GET, &format!("/v1/rollouts/{id}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until the rollout has ended (succeeded, halted or cancelled); returns it.
    pub async fn ended(&self, id: &str, timeout: Duration) -> Value {
        wait_for(&format!("rollout {id} to end"), timeout, || async {
            let r = self.rollout(id).await;
            ["succeeded", "halted", "cancelled"]
                .contains(&r["state"].as_str().unwrap_or_default())
                .then_some(r)
        })
        .await
    }

    /// Creates a rollout that must be accepted, and waits for it to succeed.
    pub async fn run(&self, body: Value, timeout: Duration) -> Value {
        let (status, created) = self.create(body.clone()).await;
        assert_eq!(status, 202, "{body} → {created}");
        let id = created["id"].as_str().unwrap().to_string();
        let r = self.ended(&id, timeout).await;
        assert_eq!(r["state"], "succeeded", "{r:#}");
        r
    }
}
