//! Checking plugin files without a running host (what `trackbridge plugin check`
//! and `plugin inspect` print): world, contract, capabilities, imports, exports.

use std::path::PathBuf;

use trackbridge_e2e::plugins::plugins_dir;
use trackbridge_host::plugins::inspect;
use trackbridge_host::server::offline_runtime;

async fn runtime() -> anyhow::Result<std::sync::Arc<trackbridge_host::plugins::Runtime>> {
    Ok(offline_runtime().await?)
}

fn built(name: &str) -> anyhow::Result<PathBuf> {
    Ok(plugins_dir().join(name))
}

#[tokio::test]
async fn a_provider_is_described_with_its_contract_capabilities_and_interfaces()
-> anyhow::Result<()> {
    let dir = tokio::task::spawn_blocking(|| built("trackbridge_plugin_vsts.wasm")).await??;
    let i = inspect(&runtime().await?, &dir).await?;
    assert_eq!(i.world, "provider-plugin");
    assert_eq!(i.contract, "trackbridge:plugin@0.2.0");
    assert_eq!(i.name, "vsts");
    assert_eq!(i.routes, ["POST /extensions/vsts/issue-updated/"]);
    assert_eq!(i.url_fields, ["organization_url", "graph_url"]);
    assert!(i.allowed_host_patterns.iter().any(|p| p.contains("vssps")));
    assert!(
        i.exports
            .iter()
            .any(|e| e == "trackbridge:plugin/provider@0.2.0"),
        "{:?}",
        i.exports
    );
    assert!(
        i.imports
            .iter()
            .any(|e| e == "trackbridge:plugin/host@0.2.0"),
        "{:?}",
        i.imports
    );
    // A built-in provider holds its secrets by handle.
    assert!(
        i.imports
            .iter()
            .any(|e| e == "trackbridge:plugin/secrets@0.2.0"),
        "{:?}",
        i.imports
    );
    assert!(
        i.imports
            .iter()
            .any(|e| e.starts_with("wasi:http/outgoing-handler")),
        "{:?}",
        i.imports
    );
    assert_eq!(i.sha256.len(), 64);
    assert!(i.size > 0);
    assert_eq!(
        (i.status_model, i.maintenance_interval_secs),
        ("workflow", None)
    );
    Ok(())
}

#[tokio::test]
async fn a_0_2_0_component_is_described_with_its_contract_status_model_and_upkeep()
-> anyhow::Result<()> {
    let path = tokio::task::spawn_blocking(|| {
        trackbridge_e2e::test_plugins::test_plugin("trackbridge-test-plugin-tasks")
    })
    .await?;
    let i = inspect(&runtime().await?, &path).await?;
    assert_eq!(i.contract, "trackbridge:plugin@0.2.0");
    assert_eq!(i.name, "tasks");
    assert_eq!(i.status_model, "open-closed");
    assert_eq!(i.maintenance_interval_secs, Some(1));
    for wanted in [
        "trackbridge:plugin/host@0.2.0",
        "trackbridge:plugin/secrets@0.2.0",
    ] {
        assert!(i.imports.iter().any(|e| e == wanted), "{:?}", i.imports);
    }
    assert!(
        i.exports
            .iter()
            .any(|e| e == "trackbridge:plugin/provider@0.2.0"),
        "{:?}",
        i.exports
    );
    Ok(())
}

#[tokio::test]
async fn a_notifier_is_recognised_as_such() -> anyhow::Result<()> {
    let path = tokio::task::spawn_blocking(|| built("trackbridge_plugin_discord.wasm")).await??;
    let i = inspect(&runtime().await?, &path).await?;
    assert_eq!(i.world, "notifier-plugin");
    assert_eq!(i.name, "discord");
    assert!(
        i.exports
            .iter()
            .any(|e| e == "trackbridge:plugin/notifier@0.2.0")
    );
    Ok(())
}

#[tokio::test]
async fn a_file_that_is_not_a_component_is_refused_with_its_name() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("broken.wasm");
    std::fs::write(&path, b"\0asm not really")?;
    let err = inspect(&runtime().await?, &path)
        .await
        .err()
        .map(|e| e.to_string());
    let err = err.unwrap_or_default();
    assert!(
        err.contains("broken.wasm") && err.contains("not a valid component"),
        "{err}"
    );
    Ok(())
}
