//! Connections to the local PostgreSQL in each `DB_SSLMODE`. `scripts/postgres.sh` serves TLS
//! with a certificate for 127.0.0.1 signed by the CA in `RFO_LOCAL_PG_CA`.

use std::collections::HashMap;

use rfo_common::db::{DbConfig, DbError};

/// Returns the local server's settings plus `extra`.
fn settings(extra: &[(&'static str, String)]) -> HashMap<&'static str, String> {
    let mut env = HashMap::new();
    for var in ["DB_HOST", "DB_PORT", "DB_USER", "DB_PASS", "DB_NAME"] {
        if let Ok(value) = std::env::var(var) {
            env.insert(var, value);
        }
    }
    env.extend(extra.iter().cloned());
    env
}

fn local_ca() -> String {
    std::env::var("RFO_LOCAL_PG_CA").expect(
        "RFO_LOCAL_PG_CA is not set: run these tests with scripts/test.sh, which starts \
         PostgreSQL with TLS",
    )
}

/// Connects with `extra` settings and returns whether the session uses TLS.
async fn session_uses_tls(extra: &[(&'static str, String)]) -> Result<bool, DbError> {
    let env = settings(extra);
    let env: HashMap<&str, &str> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let pool = DbConfig::from_env(&env).unwrap().pool();
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_with_local_ca_uses_tls() {
    let extra = [
        ("DB_SSLMODE", "verify-full".to_owned()),
        ("DB_SSLROOTCERT", local_ca()),
    ];
    assert!(session_uses_tls(&extra).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn default_mode_prefers_tls() {
    assert!(session_uses_tls(&[]).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_mode_uses_plain_text() {
    let extra = [("DB_SSLMODE", "disable".to_owned())];
    assert!(!session_uses_tls(&extra).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_with_other_ca_fails() {
    // A CA that did not sign the server's certificate: the server certificate itself.
    let other = std::path::Path::new(&local_ca())
        .with_file_name("server.crt")
        .display()
        .to_string();
    let extra = [
        ("DB_SSLMODE", "verify-full".to_owned()),
        ("DB_SSLROOTCERT", other),
    ];
    let error = session_uses_tls(&extra).await.unwrap_err().to_string();
    assert!(error.contains("certificate verify failed"), "{error}");
}
