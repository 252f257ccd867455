//! `trackbridge secrets …`: a new key, how the stored secrets stand, and
//! re-sealing every secret under the first key of the key file.

use anyhow::Context as _;
use trackbridge_host::store::Store;
use trackbridge_host::store::sealing::SecretKeys;

/// A line for a key file: 32 random bytes, base64.
pub fn new_key() -> anyhow::Result<()> {
    println!("{}", SecretKeys::generate()?);
    Ok(())
}

async fn connect(database_url: &str, keys: SecretKeys) -> anyhow::Result<Store> {
    let store = Store::connect(database_url)
        .await
        .context("connecting to the database")?;
    Ok(store.with_secret_keys(keys))
}

/// How many integrations' secrets are plain, and sealed under which key.
pub async fn status(database_url: &str, keys: SecretKeys) -> anyhow::Result<()> {
    let sealing = keys.sealing_key_id().map(str::to_owned);
    let known: Vec<String> = keys.ids().map(str::to_owned).collect();
    let store = connect(database_url, keys).await?;
    let at_rest = store.secrets_at_rest().await?;
    println!("plain text   {} integration(s)", at_rest.plain);
    for (key, count) in &at_rest.sealed {
        let role = if sealing.as_deref() == Some(key) {
            "the sealing key"
        } else if known.contains(key) {
            "an older key of the key file"
        } else {
            "NOT in the key file"
        };
        println!("key {key}  {count} integration(s), {role}");
    }
    Ok(())
}

/// Re-seal every secret not sealed under the key file's first key. Put the
/// new key first and restart the hosts before, drop the old line after.
pub async fn rotate(database_url: &str, keys: SecretKeys) -> anyhow::Result<()> {
    let Some(sealing) = keys.sealing_key_id().map(str::to_owned) else {
        anyhow::bail!("no key to seal with: give --secret-key-file");
    };
    let store = connect(database_url, keys).await?;
    store
        .check_secret_keys()
        .await
        .context("the key file must hold every key the secrets are sealed with now")?;
    let sealed = store.seal_secrets(true).await?;
    println!("re-sealed {sealed} integration(s) under key {sealing}");
    Ok(())
}
