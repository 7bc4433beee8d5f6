//! The embedded default's write-ahead log is copied into the database file in the
//! background, off the connection commands append through, and stays short however much
//! is written.

use std::path::Path;
use std::time::Duration;

use expensewise_infra::{on_tx, on_writer, Database};
use expensewise_tests::{Backend, TestDatabase};

const MB: u64 = 1_000_000;

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Durable commits of 100 kB each, about 20 MB/s.
async fn write(db: &Database, megabytes: usize) {
    let body = vec![7u8; 100_000];
    for _ in 0..megabytes * 10 {
        let mut tx = db.begin().await.unwrap();
        on_tx!(&mut tx, |conn| {
            sqlx::query("INSERT INTO ballast (body) VALUES ($1)")
                .bind(&body)
                .execute(&mut *conn)
                .await
                .unwrap();
        });
        tx.commit().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn holds(file: &Path, bytes: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while size(file) < bytes {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the database file holds {} bytes of the {bytes} written",
            size(file)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_write_ahead_log_is_copied_back_in_the_background_and_stays_short() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let db = database.connect().await;
    on_writer!(&db, |pool| {
        sqlx::query("CREATE TABLE ballast (body BLOB NOT NULL)")
            .execute(pool)
            .await
            .unwrap();
    });
    let file = database.data_dir.join("events.db");
    let log = database.data_dir.join("events.db-wal");
    // Fewer pages than the writing connection would ever copy back itself (4,000).
    write(&db, 10).await;
    holds(&file, 10 * MB).await;
    write(&db, 30).await;
    // The log file keeps the length it once had: this is the longest it ever was.
    let longest = size(&log);
    assert!(
        longest < 20 * MB,
        "the write-ahead log grew to {longest} bytes while 40 MB were written"
    );
    holds(&file, 40 * MB).await;
    db.close().await;
    database.drop_database().await;
}
