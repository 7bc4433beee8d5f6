//! Sending mail: SMTP (STARTTLS or implicit TLS, with authentication) when `SMTP_HOST` is
//! set, otherwise `.eml` files in a directory — the embedded default, where a person or a
//! test reads what would have been sent.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailConfig, SmtpSecurity};

/// One mail, before it is encoded.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Mailbox,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Without angle brackets; derived from what caused the mail, so a mail sent twice
    /// (after a crash between sending and recording it) is recognisably the same mail.
    pub message_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth another try later: the server is down, busy, or said "try again" (4xx).
    #[error("the mail server did not take the mail: {0}")]
    Transient(String),
    /// The server refused this mail for good (5xx), or it cannot be built.
    #[error("the mail was refused: {0}")]
    Permanent(String),
}

#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Files {
        directory: PathBuf,
        from: Mailbox,
    },
}

impl Mailer {
    pub fn new(config: &MailConfig, data_dir: &std::path::Path) -> anyhow::Result<Mailer> {
        let from = config.from.clone();
        let Some(smtp) = &config.smtp else {
            return Ok(Mailer::Files {
                directory: data_dir.join("mail"),
                from,
            });
        };
        let tls = || -> anyhow::Result<TlsParameters> {
            let mut parameters = TlsParameters::builder(smtp.host.clone());
            if let Some(path) = &smtp.ca_file {
                let pem = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("SMTP_CA_FILE: cannot read {}: {e}", path.display())
                })?;
                let certificates = Certificate::from_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("SMTP_CA_FILE: {e}"))?;
                parameters = parameters.add_root_certificate(certificates);
            }
            Ok(parameters.build()?)
        };
        let tls = match smtp.security {
            SmtpSecurity::StartTls => Tls::Required(tls()?),
            SmtpSecurity::Tls => Tls::Wrapper(tls()?),
            SmtpSecurity::None => Tls::None,
        };
        // "Dangerous" names the builder's default of no TLS, replaced here at once.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .tls(tls)
            .port(smtp.port)
            .timeout(Some(Duration::from_secs(20)));
        if let Some((user, password)) = &smtp.credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(Mailer::Smtp {
            transport: builder.build(),
            from,
        })
    }

    /// "smtp" or "files": what `/ready` checks and the logs name.
    pub fn kind(&self) -> &'static str {
        match self {
            Mailer::Smtp { .. } => "smtp",
            Mailer::Files { .. } => "files",
        }
    }

    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        match self {
            Mailer::Smtp { transport, from } => {
                let message = build(from, mail)?;
                transport.send(message).await.map(|_| ()).map_err(|e| {
                    if e.is_permanent() {
                        MailError::Permanent(e.to_string())
                    } else {
                        MailError::Transient(e.to_string())
                    }
                })
            }
            Mailer::Files { directory, from } => {
                let message = build(from, mail)?;
                write_file(directory, &mail.message_id, &message.formatted())
                    .await
                    .map_err(|e| MailError::Transient(format!("cannot write the mail file: {e}")))
            }
        }
    }

    /// Whether mail can go out now: the SMTP server greets us, or the folder is writable.
    pub async fn check(&self) -> anyhow::Result<()> {
        match self {
            Mailer::Smtp { transport, .. } => {
                if transport.test_connection().await? {
                    Ok(())
                } else {
                    anyhow::bail!("the SMTP server did not answer")
                }
            }
            Mailer::Files { directory, .. } => {
                tokio::fs::create_dir_all(directory).await?;
                Ok(())
            }
        }
    }
}

fn build(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    Message::builder()
        .from(from.clone())
        .to(mail.to.clone())
        .subject(&mail.subject)
        .message_id(Some(format!("<{}>", mail.message_id)))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(mail.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(mail.html.clone()),
                ),
        )
        .map_err(|e| MailError::Permanent(e.to_string()))
}

/// Writes `<message id>.eml` whole or not at all: the same mail written again replaces
/// itself, so redelivery cannot make two files.
async fn write_file(directory: &PathBuf, message_id: &str, bytes: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(directory).await?;
    let name: String = message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = directory.join(format!("{name}.eml"));
    let partial = directory.join(format!(".{name}.partial"));
    tokio::fs::write(&partial, bytes).await?;
    tokio::fs::rename(&partial, &path).await
}
