//! The operator console in a real, headless Chromium driven over WebDriver
//! (`trackbridge_e2e::browser`): signing in through the form, finding a dead
//! letter with the deliveries filter and replaying it against the simulated
//! Jira, uploading a plugin version through the file input and rolling it
//! back, and changing a sync setting. Every page visited is saved as a
//! screenshot under `target/console-screenshots/`.
//!
//! Chromium and chromedriver are the distribution's packages, installed by the
//! test setup when missing. Each test runs on the run's database (SQLite, or
//! PostgreSQL when `TRACKBRIDGE_TEST_POSTGRES` is set).

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};
use trackbridge_e2e::browser::{BROWSER_WAIT, Browser};
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::scenario::{JiraScenario, deliver, http_client, jobs, wait_queue_idle};
use trackbridge_e2e::test_plugins::test_plugin;
use trackbridge_e2e::{ADMIN_TOKEN, TestHost};

const SEN5_TRANSITIONS: &str = "/rest/api/2/issue/SEN-5/transitions";

/// One browser at a time: two cores, and each Chromium wants one.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn jira_auth() -> JiraAuth {
    JiraAuth::basic("bot@example.com", "tok")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Poll `check` until it gives `Some`, at most [`BROWSER_WAIT`].
async fn poll<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + BROWSER_WAIT;
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{what}: not after {BROWSER_WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn job(host: &TestHost, id: i64) -> anyhow::Result<Value> {
    host.api()
        .get(&format!("/api/jobs/{id}"))
        .await?
        .expect(200)
}

/// Open a browser, be sent to the sign-in form, sign in there with the admin
/// token and land on the overview.
async fn signed_in(host: &TestHost) -> anyhow::Result<Browser> {
    let browser = Browser::start(&host.base_url()).await?;
    browser.goto("/console").await?;
    let path = browser.path().await?;
    ensure!(path == "/console/login", "not sent to sign in: {path}");
    ensure!(
        browser.attrs("label[for=token]", "for").await? == ["token"],
        "the token field is labelled"
    );
    browser.screenshot("login").await?;
    browser.type_into("#token", ADMIN_TOKEN).await?;
    browser
        .click("form[action='/console/login'] button[type=submit]")
        .await?;
    browser.wait_for_path(|p| p == "/console").await?;
    browser.wait_for("h1").await?;
    Ok(browser)
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_found_by_filter_is_replayed_against_jira() -> anyhow::Result<()> {
    let _one = ONE_BROWSER.lock().await;
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();

    // A webhook handled, then a status sync to SEN-5 dead-lettered: Jira
    // answers 500 to everything.
    let scenario = JiraScenario::setup(api, &jira).await?;
    let group = scenario.linked_group(api, "SEN-5").await?;
    let event = scenario.assignee_event("SEN-5", Some("bob@example.com"), now_ms());
    deliver(&http_client(), &host.base_url(), &event, "d-browser").await?;
    wait_queue_idle(api, BROWSER_WAIT).await?;
    jira.recorder().clear();
    jira.recorder().fail_next(1000, 500);
    api.update_group(group, &json!({"status": "resolved"}))
        .await?
        .expect(200)?;
    let dead = poll("a dead sync_status job", || async {
        let dead = jobs(api, "kind=sync_status&state=dead").await?;
        Ok(dead.first().and_then(|j| j["id"].as_i64()))
    })
    .await?;
    let integration = scenario.integration.to_string();

    let browser = signed_in(&host).await?;
    let row = format!("tr.integration[data-id=\"{integration}\"]");
    ensure!(
        browser.texts(&format!("{row} td.status")).await? == ["active"],
        "the overview lists the installation"
    );
    browser.screenshot("overview").await?;

    // Dead letters: one group, one letter.
    browser.goto("/console/dead-letters").await?;
    ensure!(
        browser.texts("tr.group td.count").await? == ["1"],
        "{:?}",
        browser.texts("tr.group").await?
    );
    browser.screenshot("dead-letters").await?;

    // The deliveries page, filtered to dead ones through its form.
    browser.goto("/console/deliveries").await?;
    ensure!(
        browser.find_all("tr.job").await?.len() > 1,
        "the unfiltered list shows more than the dead letter"
    );
    browser.screenshot("deliveries").await?;
    browser
        .wait_for("#f-state")
        .await?
        .select_by_value("dead")
        .await?;
    browser.click("form.filters button[type=submit]").await?;
    let path = browser
        .wait_for_path(|p| p.starts_with("/console/deliveries?") && p.contains("state=dead"))
        .await?;
    let listed = browser.attrs("tr.job", "data-id").await?;
    ensure!(listed == [dead.to_string()], "{path}: {listed:?}");
    ensure!(
        browser.texts("tr.job td .badge").await? == ["dead"],
        "the badge says dead"
    );
    browser.screenshot("deliveries-dead").await?;

    // Open it.
    browser
        .click(&format!("tr.job[data-id=\"{dead}\"] a"))
        .await?;
    let one = format!("/console/deliveries/{dead}");
    browser.wait_for_path(|p| p == one).await?;
    ensure!(browser.texts("h1 .badge").await? == ["dead"]);
    browser.screenshot("delivery-dead").await?;

    // Jira recovers; replay it through the button and see it done.
    jira.recorder().clear_faults();
    jira.recorder().clear();
    browser
        .click(&format!(
            "form[action='/console/deliveries/{dead}/replay'] button[type=submit]"
        ))
        .await?;
    browser.wait_for_path(|p| p == one).await?;
    poll("the delivery page saying done", || async {
        browser.reload().await?;
        Ok((browser.texts("h1 .badge").await? == ["done"]).then_some(()))
    })
    .await?;
    ensure!(job(&host, dead).await?["state"] == "done");
    let calls = jira.recorder().calls("POST", SEN5_TRANSITIONS);
    ensure!(
        calls.iter().any(|c| c.completed()),
        "Jira got no transition: {}",
        jira.recorder().describe()
    );
    browser.screenshot("delivery-replayed").await?;

    browser.goto("/console/dead-letters").await?;
    ensure!(browser.find_all("tr.group").await?.is_empty());
    let text = browser.texts("main p").await?.concat();
    ensure!(text.contains("0 dead letter(s)"), "{text}");
    browser.screenshot("dead-letters-after-replay").await?;

    browser.goto("/console/audit").await?;
    ensure!(
        browser.texts("td.what").await?.first().map(String::as_str) == Some("replayed a job"),
        "{:?}",
        browser.texts("td.what").await?
    );
    ensure!(browser.texts("td.target").await?.first() == Some(&format!("job {dead}")));
    browser.screenshot("audit").await?;
    browser.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_version_uploaded_through_the_file_input_serves_and_rolls_back()
-> anyhow::Result<()> {
    let next =
        tokio::task::spawn_blocking(|| test_plugin("trackbridge-test-plugin-jira-next")).await?;
    let next = std::fs::canonicalize(&next)?;
    let _one = ONE_BROWSER.lock().await;
    let host = TestHost::start().await?;
    let api = host.api();
    let first = api.serving_version("jira").await?;
    let browser = signed_in(&host).await?;

    browser.goto("/console/plugins").await?;
    ensure!(
        browser
            .texts("tr.plugin[data-name=jira] td.version")
            .await?
            == std::slice::from_ref(&first)
    );
    browser.screenshot("plugins").await?;

    // Choose the file and install it.
    let module = next.to_str().context("a UTF-8 path")?;
    browser.type_into("input#module[type=file]", module).await?;
    browser
        .click("form[action='/console/plugins'] button[type=submit]")
        .await?;
    browser
        .wait_for_path(|p| p.starts_with("/console/plugins?installed="))
        .await?;
    let now = api.serving_version("jira").await?;
    ensure!(now != first, "still {first}");
    let status = browser.texts("[role=status]").await?.concat();
    ensure!(status.contains(&now), "{status}");
    ensure!(
        browser
            .texts("tr.plugin[data-name=jira] td.version")
            .await?
            == std::slice::from_ref(&now)
    );
    browser.screenshot("plugins-installed").await?;

    browser.goto("/console/plugins/jira").await?;
    ensure!(browser.find_all("tr.version").await?.len() == 2);
    ensure!(
        browser
            .texts("tr.switch td.kind")
            .await?
            .first()
            .map(String::as_str)
            == Some("install")
    );
    browser.screenshot("plugin-jira").await?;

    // The confirmation names both versions; nothing switches until it is sent.
    browser
        .click("a[href='/console/plugins/jira/rollback']")
        .await?;
    browser
        .wait_for_path(|p| p == "/console/plugins/jira/rollback")
        .await?;
    let text = browser.texts("p.confirm").await?.concat();
    ensure!(text.contains(&now) && text.contains(&first), "{text}");
    ensure!(api.serving_version("jira").await? == now);
    browser.screenshot("plugin-rollback-confirm").await?;
    browser
        .click("form[action='/console/plugins/jira/rollback'] button[type=submit]")
        .await?;
    browser
        .wait_for_path(|p| p != "/console/plugins/jira/rollback")
        .await?;
    ensure!(api.serving_version("jira").await? == first);
    browser.goto("/console/plugins/jira").await?;
    ensure!(
        browser
            .texts("tr.switch td.kind")
            .await?
            .first()
            .map(String::as_str)
            == Some("rollback")
    );
    browser.screenshot("plugin-jira-rolled-back").await?;
    browser.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_setting_changed_on_the_integration_page_is_saved() -> anyhow::Result<()> {
    let _one = ONE_BROWSER.lock().await;
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let api_path = format!(
        "/api/organizations/{}/integrations/{}",
        scenario.org, scenario.integration
    );
    let before = api.get(&api_path).await?.expect(200)?["config"].clone();
    ensure!(before["sync_reverse_assignment"] == true, "{before}");
    let browser = signed_in(&host).await?;

    let page = format!(
        "/console/integrations/{}?org={}",
        scenario.integration, scenario.org
    );
    browser.goto(&page).await?;
    let checkbox = browser.wait_for("#sync_reverse_assignment").await?;
    ensure!(checkbox.is_selected().await?, "inbound assignee sync is on");
    browser.screenshot("integration").await?;

    // Turn inbound assignee sync off and save.
    checkbox.click().await?;
    ensure!(!checkbox.is_selected().await?);
    browser
        .click("form[action*='/config'] button[type=submit]")
        .await?;
    browser.wait_for("[role=status]").await?;
    let status = browser.texts("[role=status]").await?.concat();
    ensure!(status.contains("Saved."), "{status}");
    browser.screenshot("integration-saved").await?;

    // The page, reloaded, and the admin API agree.
    browser.goto(&page).await?;
    ensure!(
        !browser
            .wait_for("#sync_reverse_assignment")
            .await?
            .is_selected()
            .await?,
        "still checked after a reload"
    );
    let after = api.get(&api_path).await?.expect(200)?["config"].clone();
    ensure!(after["sync_reverse_assignment"] == false, "{after}");
    for unchanged in [
        "sync_forward_assignment",
        "sync_status_forward",
        "sync_status_reverse",
    ] {
        ensure!(
            after[unchanged] == before[unchanged],
            "{unchanged}: {after}"
        );
    }
    browser.goto("/console/audit").await?;
    ensure!(
        browser.texts("td.what").await?.first().map(String::as_str) == Some("saved sync settings")
    );
    browser.screenshot("integration-audit").await?;
    browser.close().await
}
