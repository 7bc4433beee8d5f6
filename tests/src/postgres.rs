//! PostgreSQL servers of a test's own, for what the shared one cannot show: a primary
//! and a streaming replica made from it by `pg_basebackup`, on free ports of 127.0.0.1,
//! stopped and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::Connection;
use uuid::Uuid;

use crate::{free_port, TestDatabase};

pub struct Replication {
    dir: PathBuf,
    bin: PathBuf,
    primary_port: u16,
    replica_port: u16,
    /// PostgreSQL refuses to run as root: as root, its programs run as `postgres`.
    as_postgres: bool,
    running: Vec<PathBuf>,
}

impl Replication {
    pub fn start() -> Replication {
        let bin = server_programs();
        let dir = std::env::temp_dir().join(format!("expensewise-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the servers' folder");
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
        let mut servers = Replication {
            dir,
            bin,
            primary_port: free_port(),
            replica_port: free_port(),
            as_postgres,
            running: Vec::new(),
        };
        if as_postgres {
            servers.run(
                Command::new("chown").arg("postgres").arg(&servers.dir),
                "chown",
            );
        }
        let primary = servers.dir.join("primary");
        let mut initdb = servers.command("initdb");
        initdb.arg("-D").arg(&primary);
        initdb.args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
        servers.run(&mut initdb, "initdb");
        servers.start_server(&primary, servers.primary_port);
        let replica = servers.dir.join("replica");
        // -R writes the replica's connection to the primary and marks it a standby.
        let mut backup = servers.command("pg_basebackup");
        backup.args(["-h", "127.0.0.1", "-U", "postgres", "-R", "-X", "stream"]);
        backup.args(["--checkpoint=fast", "--no-sync", "-p"]);
        backup
            .arg(servers.primary_port.to_string())
            .arg("-D")
            .arg(&replica);
        servers.run(&mut backup, "pg_basebackup");
        servers.start_server(&replica, servers.replica_port);
        servers
    }

    /// An admin connection to the primary, for [`TestDatabase::create_on`].
    pub fn primary_admin_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.primary_port
        )
    }

    /// The replica's copy of `database` (made on the primary).
    pub fn replica_url(&self, database: &TestDatabase) -> String {
        let name = database.postgres_name().expect("a database on the primary");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.replica_port)
    }

    /// Stops or restarts the replica's replay of the primary's log: it keeps answering,
    /// with what it had.
    pub async fn pause_replay(&self, paused: bool) {
        let url = format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.replica_port
        );
        let mut conn = sqlx::PgConnection::connect(&url)
            .await
            .expect("connect to the replica");
        let statement = match paused {
            true => "SELECT pg_wal_replay_pause()",
            false => "SELECT pg_wal_replay_resume()",
        };
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .expect("pause or resume the replay");
        conn.close().await.ok();
    }

    fn start_server(&mut self, data: &Path, port: u16) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=60",
            self.dir.display()
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("-D")
            .arg(data)
            .arg("-l")
            .arg(data.with_extension("log"));
        start.args(["-w", "-t", "60", "-o", &options, "start"]);
        self.run(&mut start, "pg_ctl start");
        self.running.push(data.to_path_buf());
    }

    /// One of PostgreSQL's programs, as a user it runs as.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = match self.as_postgres {
            true => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(path);
                c
            }
            false => Command::new(path),
        };
        command.current_dir(&self.dir);
        command
    }

    fn run(&self, command: &mut Command, what: &str) {
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Replication {
    fn drop(&mut self) {
        for data in std::mem::take(&mut self.running).into_iter().rev() {
            let mut stop = self.command("pg_ctl");
            let _ = stop
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The folder of PostgreSQL's server programs: `PG_BIN`, or the newest of Debian's
/// installed versions (./scripts/test.sh installs one).
fn server_programs() -> PathBuf {
    if let Some(bin) = std::env::var_os("PG_BIN") {
        return PathBuf::from(bin);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_basebackup").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).expect(
        "PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup) are not installed: \
         ./scripts/test.sh installs them, or set PG_BIN to their folder",
    )
}
