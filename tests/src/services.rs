//! The real services tests run against, each on a free port of 127.0.0.1 and stopped
//! when dropped: NATS (JetStream), an S3-compatible server, SMTP, a load balancer.

use std::path::PathBuf;

use serde_json::Value;
use uuid::Uuid;

/// SIGKILLs a child process, if it runs, and reaps it.
pub(crate) fn kill_child(child: &mut Option<std::process::Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A port on 127.0.0.1 that nothing listens on (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until something accepts connections on `port`; `what` has failed to start
/// if nothing does within `seconds`.
pub fn wait_for_port(port: u16, seconds: u64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A real S3-compatible server (moto, from PyPI) on a free port, with one bucket, and
/// the `aws` command line (also from PyPI) to look into it as a client that is not ours.
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    child: std::process::Child,
}

const S3_KEY_ID: &str = "expensewise-test";
const S3_SECRET: &str = "expensewise-test-secret";

/// Runs one of the Python scripts of `tests/support` with the test tools' Python (the
/// tools that are not ours); panics if it cannot start.
pub fn support_script(name: &str, args: &[&str]) -> std::process::Output {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("support")
        .join(name);
    std::process::Command::new(&python)
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (./scripts/test.sh installs it): {e}"))
}

/// A program installed next to the test tools' Python (./scripts/test.sh puts them there).
pub fn test_tool(name: &str) -> PathBuf {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    PathBuf::from(python)
        .parent()
        .map(|dir| dir.join(name))
        .unwrap_or_else(|| PathBuf::from(name))
}

impl S3Server {
    pub fn start() -> S3Server {
        let port = free_port();
        let binary = test_tool("moto_server");
        let child = std::process::Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}. The tests need moto[server]: run ./scripts/test.sh, \
                     which installs it",
                    binary.display()
                )
            });
        let server = S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "receipts".to_string(),
            child,
        };
        wait_for_port(port, 30, "the S3 server did not start");
        // As production's bucket is made (infra/deploy/terraform): with Object Lock,
        // which receipts are stored under.
        let made = server.aws(&[
            "s3api",
            "create-bucket",
            "--bucket",
            &server.bucket,
            "--object-lock-enabled-for-bucket",
        ]);
        assert!(made.status.success(), "cannot create the bucket: {made:?}");
        server
    }

    /// What the application needs to use the bucket.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_S3_BUCKET", self.bucket.clone()),
            ("S3_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", S3_KEY_ID.to_string()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET.to_string()),
        ]
    }

    /// A new symmetric key of the KMS moto serves beside S3 (made with the `aws` command
    /// line, as an operator would): its id.
    pub fn kms_key(&self) -> String {
        let made = self.aws(&["kms", "create-key", "--description", "expensewise test"]);
        assert!(made.status.success(), "cannot create a KMS key: {made:?}");
        let answer: Value = serde_json::from_slice(&made.stdout).expect("create-key's JSON");
        answer["KeyMetadata"]["KeyId"]
            .as_str()
            .expect("a key id")
            .to_string()
    }

    /// What the application needs to wrap its data keys with the KMS key `key_id`.
    pub fn kms_environment(&self, key_id: &str) -> Vec<(&'static str, String)> {
        vec![
            ("KMS_KEY_ID", key_id.to_string()),
            ("KMS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", S3_KEY_ID.to_string()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET.to_string()),
        ]
    }

    /// Runs the `aws` command line against this server.
    pub fn aws(&self, args: &[&str]) -> std::process::Output {
        let binary = test_tool("aws");
        std::process::Command::new(&binary)
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", S3_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real nats-server with JetStream, on a free port of 127.0.0.1, killed when dropped.
/// The binary comes from `NATS_SERVER_BIN` (the test script installs it) or the PATH.
pub struct NatsServer {
    pub url: String,
    port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("expensewise-nats-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a NATS store directory");
        // Every write reaches the disk before it is acknowledged: a killed server loses
        // nothing the relay was told is stored.
        let config = format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\", sync_interval: always }}\n",
            dir.join("store").display()
        );
        std::fs::write(dir.join("nats.conf"), config).expect("write the NATS configuration");
        let mut server = NatsServer {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            dir,
            child: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let binary = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".to_string());
        let child = std::process::Command::new(&binary)
            .arg("-c")
            .arg(self.dir.join("nats.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("nats.log")).expect("a NATS log file"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {binary}: {e}. The tests need nats-server: run ./scripts/test.sh, \
                     which installs it, or set NATS_SERVER_BIN"
                )
            });
        self.child = Some(child);
        wait_for_port(self.port, 10, "nats-server did not start");
    }

    /// SIGKILL: no chance to flush or say goodbye.
    /// The server's process id, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// Starts again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real load balancer (HAProxy, from Debian) on a free port of 127.0.0.1 in front of
/// two API processes, as replicas stand behind an ingress: reads (GET, HEAD) go to one,
/// everything else to the other. The binary comes from `HAPROXY_BIN` (the test script
/// installs it) or the PATH; killed when dropped.
pub struct LoadBalancer {
    pub base: String,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

const BALANCER_DEFAULTS: &str =
    "defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n";

impl LoadBalancer {
    pub fn start(writes: u16, reads: u16) -> LoadBalancer {
        let port = free_port();
        LoadBalancer::with_config(
            port,
            format!(
                "{BALANCER_DEFAULTS}frontend api\n  bind 127.0.0.1:{port}\n  acl read method GET HEAD\n  \
                 use_backend reads if read\n  default_backend writes\n\
                 backend writes\n  server writes 127.0.0.1:{writes}\n\
                 backend reads\n  server reads 127.0.0.1:{reads}\n"
            ),
        )
    }

    /// Every request to any of `replicas` in turn, as an ingress does: a replica whose
    /// `/ready` fails (checked every 200 ms) gets no new requests until it passes twice.
    pub fn spread(replicas: &[u16]) -> LoadBalancer {
        let port = free_port();
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(n, replica)| format!("  server api{n} 127.0.0.1:{replica} check\n"))
            .collect();
        LoadBalancer::with_config(
            port,
            format!(
                "{BALANCER_DEFAULTS}frontend api\n  bind 127.0.0.1:{port}\n  default_backend api\n\
                 backend api\n  balance roundrobin\n  option httpchk GET /ready\n  \
                 default-server inter 200ms fall 1 rise 2\n{servers}"
            ),
        )
    }

    fn with_config(port: u16, config: String) -> LoadBalancer {
        let dir = std::env::temp_dir().join(format!("expensewise-lb-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a load balancer directory");
        std::fs::write(dir.join("haproxy.cfg"), config).expect("write the HAProxy configuration");
        let binary = std::env::var("HAPROXY_BIN").unwrap_or_else(|_| "haproxy".to_string());
        let child = std::process::Command::new(&binary)
            .arg("-db")
            .arg("-f")
            .arg(dir.join("haproxy.cfg"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("haproxy.log")).expect("a HAProxy log file"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {binary}: {e}. The tests need HAProxy: run ./scripts/test.sh, \
                     which installs it, or set HAPROXY_BIN"
                )
            });
        wait_for_port(port, 10, "HAProxy did not start");
        LoadBalancer {
            base: format!("http://127.0.0.1:{port}"),
            dir,
            child: Some(child),
        }
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        kill_child(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real SMTP server (aiosmtpd, `tests/support/smtp_sink.py`) on 127.0.0.1 that
/// requires a login and keeps each mail it accepts as a file.
pub struct SmtpServer {
    pub port: u16,
    folder: PathBuf,
    /// `SMTP_SECURITY` as the product names it: "none", "starttls" or "tls".
    security: &'static str,
    child: Option<std::process::Child>,
}

impl SmtpServer {
    pub const USER: &'static str = "mailer";
    pub const PASSWORD: &'static str = "smtp-password-for-tests";

    /// Plain SMTP.
    pub fn start() -> SmtpServer {
        Self::start_with("none")
    }

    /// `security` "starttls" or "tls": a certificate for 127.0.0.1 from a CA made for this
    /// server, whose certificate is `ca_file()`.
    pub fn start_with(security: &'static str) -> SmtpServer {
        let port = free_port();
        let folder = std::env::temp_dir().join(format!("expensewise-smtp-{}", Uuid::new_v4()));
        let mut server = SmtpServer {
            port,
            folder,
            security,
            child: None,
        };
        server.launch();
        server
    }

    pub fn ca_file(&self) -> PathBuf {
        self.folder.join("ca.pem")
    }

    fn launch(&mut self) {
        let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/smtp_sink.py");
        let mut command = std::process::Command::new(&python);
        command
            .arg(script)
            .arg(self.port.to_string())
            .arg(self.folder.join("mails"))
            .args(["--login", Self::USER, Self::PASSWORD]);
        if self.security != "none" {
            command.arg("--tls").arg(self.security).arg(self.ca_file());
        }
        let child = command
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {python} (with aiosmtpd; ./scripts/test.sh installs it): {e}")
            });
        self.child = Some(child);
        wait_for_port(self.port, 15, "the SMTP server did not start");
    }

    /// The product's configuration for this server, trusting its CA.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("SMTP_HOST", "127.0.0.1".to_string()),
            ("SMTP_PORT", self.port.to_string()),
            ("SMTP_SECURITY", self.security.to_string()),
            ("SMTP_USER", Self::USER.to_string()),
            ("SMTP_PASSWORD", Self::PASSWORD.to_string()),
            ("PUBLIC_URL", "https://expenses.example.test".to_string()),
        ];
        if self.security != "none" {
            env.push(("SMTP_CA_FILE", self.ca_file().display().to_string()));
        }
        env
    }

    /// Every mail accepted so far, as received (envelope recipients first).
    pub fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.folder.join("mails")) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .map(|p| std::fs::read_to_string(p).expect("a mail file"))
            .collect()
    }

    /// SIGKILL: the server is gone, connections are refused.
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// Starts again on the same port, keeping the mails received so far.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// The stream's messages as nats-py (not our client) sees them.
pub fn stream_messages(nats_url: &str) -> Vec<Value> {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/jetstream_messages.py");
    let output = std::process::Command::new(&python)
        .args([script, nats_url, expensewise_infra::nats::STREAM])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (with nats-py; ./scripts/test.sh installs it): {e}")
        });
    assert!(
        output.status.success(),
        "nats-py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("nats-py printed JSON")
}

pub async fn wait_for_stream(nats_url: &str, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let messages = stream_messages(nats_url);
        if messages.len() >= count || tokio::time::Instant::now() > deadline {
            return messages;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A webhook receiver that verifies with the `standardwebhooks` package from PyPI
/// (`support/webhook_receiver.py`), or one that redirects every message elsewhere.
pub struct WebhookReceiver {
    pub port: u16,
    folder: PathBuf,
    redirect_to: Option<String>,
    /// The API a verified `ExpenseCreated` is looked up in at once.
    check_base: Option<String>,
    child: Option<std::process::Child>,
}

impl WebhookReceiver {
    /// Verifies with the secrets [`WebhookReceiver::trust`] was given, logging each message.
    pub fn start() -> WebhookReceiver {
        Self::launched(None)
    }

    /// Answers every message with a 307 to `url`.
    pub fn redirecting_to(url: &str) -> WebhookReceiver {
        Self::launched(Some(url.to_string()))
    }

    fn launched(redirect_to: Option<String>) -> WebhookReceiver {
        let folder = std::env::temp_dir().join(format!("expensewise-hooks-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&folder).expect("a folder for the receiver");
        std::fs::write(folder.join("secrets"), "").expect("the receiver's secrets");
        let mut receiver = WebhookReceiver {
            port: free_port(),
            folder,
            redirect_to,
            check_base: None,
            child: None,
        };
        receiver.launch();
        receiver
    }

    /// From its next start on, the receiver lists the organization's expenses at `base`
    /// (with `token`, no consistency token) on each verified `ExpenseCreated`, and logs
    /// whether the new one is listed (`visible`).
    pub fn look_up_expenses_in(&mut self, base: &str, token: &str) {
        std::fs::write(self.folder.join("token"), token).expect("the receiver's token");
        self.check_base = Some(base.to_string());
    }

    /// `http://127.0.0.1:<port>/hooks`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    /// The receiver verifies with these secrets from the next message on, each on its
    /// own (`verified_by` names them by their place here).
    pub fn trust(&self, secrets: &[&str]) {
        std::fs::write(self.folder.join("secrets"), secrets.join("\n"))
            .expect("the receiver's secrets");
    }

    fn launch(&mut self) {
        let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/webhook_receiver.py");
        let mut command = std::process::Command::new(&python);
        command
            .arg(script)
            .args(["--port", &self.port.to_string()])
            .arg("--secrets")
            .arg(self.folder.join("secrets"))
            .arg("--log")
            .arg(self.folder.join("log.jsonl"));
        if let Some(url) = &self.redirect_to {
            command.args(["--redirect-to", url]);
        }
        if let Some(base) = &self.check_base {
            command
                .args(["--check-base", base])
                .arg("--check-token-file")
                .arg(self.folder.join("token"));
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run {python} (with standardwebhooks; ./scripts/test.sh installs it): {e}"
            )
        });
        self.child = Some(child);
        wait_for_port(self.port, 15, "the webhook receiver did not start");
    }

    /// Every message received so far, in order: `headers`, `body`, `verified_by`,
    /// `reason` (why none verified it).
    pub fn messages(&self) -> Vec<Value> {
        let Ok(text) = std::fs::read_to_string(self.folder.join("log.jsonl")) else {
            return Vec::new();
        };
        // A last line without its newline is one the receiver is still writing: it is
        // read on the next call.
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l).expect("a logged message"))
            .collect()
    }

    /// SIGKILL: connections are refused until [`WebhookReceiver::restart`].
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// Starts again on the same port, keeping what was received.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}
