//! `expensewise` commands run as processes of their own.

use std::path::PathBuf;

use crate::services::kill_child;

/// The `expensewise` binary of this workspace's debug build (or `EXPENSEWISE_BIN`).
pub fn expensewise_bin() -> PathBuf {
    if let Ok(path) = std::env::var("EXPENSEWISE_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let path = target.join("debug").join("expensewise");
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build -p expensewise-api`; ./scripts/test.sh \
         does), or set EXPENSEWISE_BIN",
        path.display()
    );
    path
}

/// An `expensewise` subcommand running as its own process, killed (SIGKILL) when
/// dropped.
pub struct Process {
    child: Option<std::process::Child>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Process {
    pub fn start(args: &[&str], env: &[(&str, String)], log: PathBuf) -> Process {
        let mut process = Process {
            child: None,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            log,
        };
        process.launch();
        process
    }

    /// The running process's id, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("a process log");
        let child = std::process::Command::new(expensewise_bin())
            .args(&self.args)
            .envs(self.env.iter().cloned())
            .stdout(log.try_clone().expect("a process log"))
            .stderr(log)
            .spawn()
            .expect("start expensewise");
        self.child = Some(child);
    }

    /// Starts the same command again, once the last run has exited.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the process still runs");
        self.launch();
    }

    /// SIGKILL, then start the same command again.
    pub fn kill_and_restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// SIGTERM, as an orchestrator stops a pod.
    pub fn terminate(&self) {
        let child = self.child.as_ref().expect("a running process");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
    }

    /// Waits up to `limit` for the process to exit; its status, or `None` if it did not.
    pub fn wait_for_exit(
        &mut self,
        limit: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        let child = self.child.as_mut()?;
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("the process status") {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

/// Runs an `expensewise` command to its end.
pub async fn expensewise(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    tokio::process::Command::new(expensewise_bin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .output()
        .await
        .expect("run expensewise")
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The product as one process per role on PostgreSQL and JetStream, as deployed: a
/// relay and a projector run; API replicas are started by the test ([`Stack::api`]).
pub struct Stack {
    pub database: crate::TestDatabase,
    pub env: Vec<(&'static str, String)>,
    pub log: PathBuf,
    _nats: crate::NatsServer,
    _relay: Process,
    _projector: Process,
}

impl Stack {
    pub async fn start() -> Stack {
        let nats = crate::NatsServer::start();
        let database = crate::TestDatabase::create(crate::Backend::Postgres).await;
        database.connect().await;
        let mut env = database.environment();
        env.push(("NATS_URL", nats.url.clone()));
        let log = database.data_dir.join("processes.log");
        let relay = Process::start(&["relay"], &env, log.clone());
        let projector = Process::start(&["projector"], &env, log.clone());
        Stack {
            database,
            env,
            log,
            _nats: nats,
            _relay: relay,
            _projector: projector,
        }
    }

    /// An API replica on `port`, with `extra` settings.
    pub fn api(&self, port: u16, extra: &[(&'static str, &str)]) -> Process {
        let mut env = self.env.clone();
        env.push(("PORT", port.to_string()));
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        Process::start(&["api"], &env, self.log.clone())
    }
}
