//! Identity mappings through the admin API: a tracker's user (its stable id
//! at an integration) mapped to a member of the organization — listed,
//! filtered, deleted — and refused for a user who is not a member, an
//! integration not installed there, a blank id, a second mapping of the same
//! id, and a caller without the admin token.

use anyhow::ensure;
use serde_json::json;
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::scenario::JiraScenario;
use trackbridge_e2e::{TestHost, id_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_map_members_only_and_are_listed_and_deleted() -> anyhow::Result<()> {
    let jira = JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let path = format!("/api/organizations/{}/identities", scenario.org);
    let mapping = |external: &str, user: i64| {
        json!({"integration_id": scenario.integration, "external_id": external,
               "user_id": user, "login": "octobob", "name": "Bob"})
    };

    let created = api
        .post(&path, &mapping("583291", scenario.bob))
        .await?
        .expect(201)?;
    ensure!(
        created["external_id"] == "583291"
            && created["user_id"] == scenario.bob
            && created["login"] == "octobob",
        "{created}"
    );
    let listed = api.get(&path).await?.expect(200)?;
    ensure!(listed == json!([created.clone()]), "{listed}");

    // A user of no membership here: refused, and nothing stored.
    let outsider = id_of(&api.create_user("eve", &[("eve@example.com", true)]).await?)?;
    let refused = api.post(&path, &mapping("777", outsider)).await?;
    ensure!(
        refused.status == 400
            && refused.body["error"]
                .as_str()
                .is_some_and(|e| e.contains("not a member")),
        "{} {}",
        refused.status,
        refused.text
    );
    // Another organization's integration: refused.
    let other = id_of(&api.create_organization("Elsewhere").await?)?;
    api.add_member(other, scenario.bob).await?;
    let elsewhere = format!("/api/organizations/{other}/identities");
    let refused = api
        .post(&elsewhere, &mapping("583291", scenario.bob))
        .await?;
    ensure!(
        refused.status == 400 && refused.text.contains("not installed"),
        "{} {}",
        refused.status,
        refused.text
    );
    // The same tracker user twice: a conflict; a blank id: a bad request.
    let twice = api.post(&path, &mapping("583291", scenario.bob)).await?;
    ensure!(twice.status == 409, "{} {}", twice.status, twice.text);
    let blank = api.post(&path, &mapping("  ", scenario.bob)).await?;
    ensure!(blank.status == 400, "{} {}", blank.status, blank.text);
    // No token, no write.
    let anonymous = api
        .without_token()
        .post(&path, &mapping("9", scenario.bob))
        .await?;
    ensure!(anonymous.status == 401, "{}", anonymous.status);
    ensure!(
        api.get(&path).await?.expect(200)?.as_array().map(Vec::len) == Some(1),
        "only the first mapping is stored"
    );

    let filtered = api
        .get(&format!("{path}?user_id={outsider}"))
        .await?
        .expect(200)?;
    ensure!(filtered == json!([]), "{filtered}");
    let id = id_of(&created)?;
    let one = format!("{path}/{id}");
    let deleted = api.request(reqwest::Method::DELETE, &one, None).await?;
    ensure!(deleted.status == 204, "{} {}", deleted.status, deleted.text);
    let again = api.request(reqwest::Method::DELETE, &one, None).await?;
    ensure!(
        again.status == 404,
        "a mapping is deleted once: {}",
        again.status
    );
    ensure!(api.get(&path).await?.expect(200)? == json!([]));
    Ok(())
}
