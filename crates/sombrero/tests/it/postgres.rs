//! The real `PostgreSQL` the history and lock tests run on: the throw-away cluster that
//! `.ci/run` starts with `scripts/pg-throwaway` and names in `SOMBRERO_TEST_POSTGRES`
//! (`postgres://postgres@127.0.0.1:PORT/postgres`). Every test gets a database of its
//! own. Without the variable the tests skip, saying why (and fail under CI).

use std::sync::atomic::{AtomicUsize, Ordering};

/// The variable naming the test cluster.
pub const VARIABLE: &str = "SOMBRERO_TEST_POSTGRES";

/// The test cluster's URL, or `None` after printing why `test` is skipped.
pub fn server(test: &str) -> Option<String> {
    let url = std::env::var(VARIABLE).ok().filter(|url| !url.is_empty());
    if url.is_none() {
        pve_lab::testing::skip(
            test,
            &format!(
                "no PostgreSQL to test against: set {VARIABLE} (scripts/pg-throwaway start DIR \
                 prints a URL for a throw-away cluster on 127.0.0.1)"
            ),
        );
    }
    url
}

/// Runs `sql` on the database at `url` (a helper connection of the test's own).
pub fn execute(url: &str, sql: &str) {
    query(url, sql);
}

/// The rows of `sql` on the database at `url`, every column as text. Runs on a thread
/// of its own, so async tests can call it too.
pub fn query(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    std::thread::scope(|scope| scope.spawn(|| query_here(url, sql)).join().unwrap())
}

fn query_here(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|error| panic!("cannot connect to the test PostgreSQL: {error}"));
        let driver = tokio::spawn(connection);
        let messages = client.simple_query(sql).await.unwrap();
        drop(client);
        let _ = driver.await;
        messages
            .into_iter()
            .filter_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|index| row.get(index).map(ToOwned::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    })
}

/// A new, empty database on the test cluster for one test; returns its URL.
pub fn fresh_database(server: &str, test: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "{}_{}_{}",
        test.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(30)
            .collect::<String>()
            .to_ascii_lowercase(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    execute(server, &format!("CREATE DATABASE {name}"));
    with_database(server, &name)
}

/// `server`'s URL with another database.
pub fn with_database(server: &str, database: &str) -> String {
    let (base, _) = server
        .rsplit_once('/')
        .expect("a postgres://USER@HOST:PORT/DATABASE URL");
    format!("{base}/{database}")
}
