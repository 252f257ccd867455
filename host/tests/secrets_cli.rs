//! `trackbridge secrets`: a new key is a valid key file line, `rotate`
//! re-seals every integration's secrets under the key file's first key, and
//! `status` tells which key seals what — never printing a secret or a key.

use std::process::Command;

use trackbridge_host::store::sealing::SecretKeys;
use trackbridge_host::store::{NewIntegration, Store};

const CANARY: &str = r#"{"api_token":"canary-5e1f0c"}"#;

fn trackbridge(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_trackbridge"))
        .args(args)
        .env_remove("TRACKBRIDGE_SECRET_KEY_FILE")
        .env_remove("DATABASE_URL")
        .output()
        .expect("running trackbridge");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
    assert!(!stdout.contains("canary") && !stderr.contains("canary"));
    stdout
}

#[tokio::test]
async fn rotate_reseals_every_secret_under_the_first_key_and_status_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let (old, new) = (
        trackbridge(&["secrets", "new-key"]),
        trackbridge(&["secrets", "new-key"]),
    );
    assert_ne!(old, new, "each key is new");
    let old_file = dir.path().join("old.keys");
    std::fs::write(&old_file, &old).unwrap();
    let old_keys = SecretKeys::from_file(&old_file).unwrap();

    let store = Store::connect(&url)
        .await
        .unwrap()
        .with_secret_keys(old_keys.clone());
    let org = store.create_organization("Acme", "acme").await.unwrap();
    let installed = store
        .install_integration(
            org.id,
            NewIntegration {
                provider: "jira",
                external_id: "acme.atlassian.net",
                name: "Acme",
                metadata: "{}",
                secrets: CANARY,
                allowed_hosts: &[],
            },
        )
        .await
        .unwrap();
    drop(store);

    // The new key first, the old one kept below it.
    let both = dir.path().join("both.keys");
    std::fs::write(&both, format!("{new}{old}")).unwrap();
    let both = both.to_string_lossy().into_owned();
    let said = trackbridge(&[
        "secrets",
        "rotate",
        "--database-url",
        &url,
        "--secret-key-file",
        &both,
    ]);
    let new_file = dir.path().join("new.keys");
    std::fs::write(&new_file, &new).unwrap();
    let new_keys = SecretKeys::from_file(&new_file).unwrap();
    let new_id = new_keys.sealing_key_id().unwrap().to_owned();
    assert!(
        said.contains("re-sealed 1 integration(s)") && said.contains(&new_id),
        "{said}"
    );
    assert!(
        !said.contains(old.trim()) && !said.contains(new.trim()),
        "{said}"
    );

    let status = trackbridge(&[
        "secrets",
        "status",
        "--database-url",
        &url,
        "--secret-key-file",
        &both,
    ]);
    assert!(
        status.contains(&format!("key {new_id}  1 integration(s), the sealing key")),
        "{status}"
    );

    // The new key alone opens it; the old one alone no longer does.
    let store = Store::connect(&url)
        .await
        .unwrap()
        .with_secret_keys(new_keys);
    let opened = store.integration(installed.id).await.unwrap();
    assert_eq!(opened.secrets, CANARY);
    let stale = Store::connect(&url)
        .await
        .unwrap()
        .with_secret_keys(old_keys);
    assert!(stale.integration(installed.id).await.is_err());
}
