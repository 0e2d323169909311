//! Telling someone that a destination is failing: Armor's `email_for_error`,
//! mailed through an SMTP relay, and the same notice POSTed to an error
//! webhook. At most one notice per destination per interval.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;

use super::destination::Destination;
use crate::serve::metrics::Metrics;

/// Where notices go.
#[derive(Debug, Clone)]
pub struct NoticeConfig {
    /// The SMTP relay, `HOST:PORT` (plain SMTP: a relay on the same host or network).
    pub smtp: Option<(String, u16)>,
    /// The sender's address (default `xf@` and the host name).
    pub from: String,
    /// An error webhook that receives each notice as JSON.
    pub webhook: Option<reqwest::Url>,
    /// The least time between two notices about one destination (default 1 h).
    pub interval: Duration,
}

impl Default for NoticeConfig {
    fn default() -> Self {
        NoticeConfig {
            smtp: None,
            from: "xf@localhost".to_string(),
            webhook: None,
            interval: Duration::from_secs(3600),
        }
    }
}

pub struct Notices {
    config: NoticeConfig,
    mailer: Option<AsyncSmtpTransport<Tokio1Executor>>,
    client: reqwest::Client,
    last: Mutex<HashMap<String, Instant>>,
    metrics: std::sync::Arc<Metrics>,
}

impl Notices {
    pub fn new(
        config: NoticeConfig,
        client: reqwest::Client,
        metrics: std::sync::Arc<Metrics>,
    ) -> Notices {
        let mailer = config.smtp.as_ref().map(|(host, port)| {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                .port(*port)
                .timeout(Some(Duration::from_secs(30)))
                .build()
        });
        Notices {
            config,
            mailer,
            client,
            last: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// A destination has started failing: notify, unless it was notified of lately.
    pub async fn destination_failing(&self, destination: &Destination, error: &str, queued: u64) {
        let wants_mail = destination.email_for_error.is_some() && self.mailer.is_some();
        if !wants_mail && self.config.webhook.is_none() {
            return;
        }
        {
            let Ok(mut last) = self.last.lock() else {
                return;
            };
            let now = Instant::now();
            if let Some(at) = last.get(&*destination.name) {
                if now.duration_since(*at) < self.config.interval {
                    return;
                }
            }
            last.insert(destination.name.to_string(), now);
        }
        let subject = format!("xf: deliveries to {} are failing", destination.name);
        let text = format!(
            "Deliveries to destination {} ({}) are failing.\n\nLast error: {error}\nRecords queued for it: {queued}\n\n\
             xf keeps retrying; records are kept in the spool until delivered or dead-lettered.\n\
             At most one such notice is sent per {} s.\n",
            destination.name,
            destination.shown_uri(),
            self.config.interval.as_secs(),
        );
        if let (Some(address), Some(mailer)) = (&destination.email_for_error, &self.mailer) {
            match self.mail(mailer, address, &subject, text.clone()).await {
                Ok(()) => {
                    self.metrics
                        .notices
                        .get_or_create(&vec![("kind", "mail".to_string())])
                        .inc();
                }
                Err(error) => {
                    tracing::error!(destination = %destination.name, %error, "cannot mail the failure notice")
                }
            }
        }
        if let Some(webhook) = &self.config.webhook {
            let notice = json!({
                "destination": &*destination.name,
                "uri": destination.shown_uri(),
                "error": error,
                "queued": queued,
                "email_for_error": destination.email_for_error,
            });
            let sent = self
                .client
                .post(webhook.clone())
                .timeout(Duration::from_secs(30))
                .header("content-type", "application/json")
                .body(notice.to_string())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    self.metrics
                        .notices
                        .get_or_create(&vec![("kind", "webhook".to_string())])
                        .inc();
                }
                Ok(response) => {
                    tracing::error!(status = %response.status(), "the error webhook refused the notice")
                }
                Err(error) => tracing::error!(%error, "cannot post the failure notice"),
            }
        }
    }

    async fn mail(
        &self,
        mailer: &AsyncSmtpTransport<Tokio1Executor>,
        to: &str,
        subject: &str,
        text: String,
    ) -> Result<(), String> {
        let from: Mailbox = self.config.from.parse().map_err(|e| format!("{e}"))?;
        let to: Mailbox = to.parse().map_err(|e| format!("{e}"))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .body(text)
            .map_err(|e| e.to_string())?;
        mailer.send(message).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}
