//! Assign and deassign, complete (spec §4), through HTTP: activity, history,
//! subscriptions, `createOnly`, and what is pushed to trackers.

use serde_json::{Value, json};
use trackbridge_e2e::jira_sim::{BOB_ACCOUNT_ID, JiraAuth, JiraSim};
use trackbridge_e2e::{ApiClient, TestHost, id_of};

const ASSIGNEE_PATH: &str = "/rest/api/2/issue/SEN-5/assignee";

struct Env {
    host: TestHost,
    jira: JiraSim,
    group: i64,
    bob: i64,
    alice: i64,
    team: i64,
}

impl Env {
    async fn start() -> anyhow::Result<Env> {
        let jira = JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await?;
        let host = TestHost::start().await?;
        let api = host.api().clone();
        let org = id_of(&api.create_organization("Acme").await?)?;
        let project = id_of(&api.create_project(org, "backend").await?)?;
        let bob = id_of(&api.create_user("bob", &[("bob@example.com", true)]).await?)?;
        let alice = id_of(
            &api.create_user("alice", &[("alice@example.com", true)])
                .await?,
        )?;
        let team = id_of(&api.create_team(org, "core").await?)?;
        api.add_team_project(team, project).await?;
        for user in [bob, alice] {
            api.add_member(org, user).await?;
            api.add_team_member(team, user, true).await?;
        }
        let integration = id_of(
            &api.install_integration(
                org,
                "jira",
                &json!({"base_url": jira.base_url(),
                        "credential": {"type": "api_token", "email": "bot@example.com", "api_token": "tok"}}),
            )
            .await?,
        )?;
        api.set_config(org, integration, &json!({"sync_forward_assignment": true}))
            .await?;
        let group = id_of(&api.create_group(project, "TypeError").await?)?;
        api.link_external_issue(group, integration, "SEN-5").await?;
        Ok(Env {
            host,
            jira,
            group,
            bob,
            alice,
            team,
        })
    }

    fn api(&self) -> &ApiClient {
        self.host.api()
    }

    async fn put(&self, body: Value) -> anyhow::Result<Value> {
        self.api()
            .update_group(self.group, &body)
            .await?
            .expect(200)
    }

    async fn subscribers(&self) -> anyhow::Result<Vec<Value>> {
        let subs = self
            .api()
            .get(&format!("/api/groups/{}/subscriptions", self.group))
            .await?
            .expect(200)?;
        Ok(subs
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|s| s["subscriber"].clone())
            .collect())
    }
}

#[tokio::test]
async fn assigning_records_activity_history_and_a_subscription() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let group = env
        .put(json!({"assignedTo": format!("user:{}", env.bob)}))
        .await?;
    assert_eq!(group["assignee"], json!({"type": "user", "id": env.bob}));
    let activity = env.api().activity(env.group).await?;
    assert_eq!(activity.len(), 1);
    assert_eq!(activity[0]["type"], "assigned");
    assert_eq!(
        activity[0]["data"],
        json!({"assignee": env.bob.to_string(), "assigneeEmail": "bob@example.com", "assigneeType": "user"})
    );
    assert_eq!(env.api().history_statuses(env.group).await?, ["assigned"]);
    assert_eq!(
        env.subscribers().await?,
        [json!({"type": "user", "id": env.bob})]
    );

    // A team assignment: no email, type team.
    env.put(json!({"assignedTo": format!("team:{}", env.team)}))
        .await?;
    let activity = env.api().activity(env.group).await?;
    assert_eq!(
        activity[1]["data"],
        json!({"assignee": env.team.to_string(), "assigneeEmail": null, "assigneeType": "team"})
    );
    env.host.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn reassigning_the_same_assignee_changes_nothing() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.put(json!({"assignedTo": format!("user:{}", env.bob)}))
        .await?;
    env.jira
        .recorder()
        .wait_for_call("PUT", ASSIGNEE_PATH)
        .await?;
    env.put(json!({"assignedTo": format!("user:{}", env.bob)}))
        .await?;
    assert_eq!(env.api().activity_types(env.group).await?, ["assigned"]);
    assert_eq!(env.api().history_statuses(env.group).await?, ["assigned"]);
    env.host.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn create_only_never_replaces_an_assignment_but_fills_an_empty_one() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.put(json!({"assignedTo": format!("user:{}", env.bob)}))
        .await?;
    let group = env
        .put(json!({"assignedTo": format!("user:{}", env.alice), "createOnly": true}))
        .await?;
    assert_eq!(group["assignee"], json!({"type": "user", "id": env.bob}));
    assert_eq!(env.api().activity_types(env.group).await?, ["assigned"]);

    // After a deassign the cached "has an assignee" must be gone: create-only assigns.
    env.put(json!({"assignedTo": null})).await?;
    let group = env
        .put(json!({"assignedTo": format!("user:{}", env.alice), "createOnly": true}))
        .await?;
    assert_eq!(group["assignee"], json!({"type": "user", "id": env.alice}));
    env.host.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn deassigning_links_history_and_removes_the_assigned_subscription() -> anyhow::Result<()> {
    let env = Env::start().await?;
    // Nothing to deassign: nothing happens.
    env.put(json!({"assignedTo": null})).await?;
    assert!(env.api().activity(env.group).await?.is_empty());

    env.put(json!({"assignedTo": format!("user:{}", env.bob)}))
        .await?;
    env.put(json!({"assignedTo": null})).await?;
    env.put(json!({"assignedTo": format!("user:{}", env.alice)}))
        .await?;
    assert_eq!(
        env.api().activity_types(env.group).await?,
        ["assigned", "unassigned", "assigned"]
    );
    let history = env.api().history(env.group).await?;
    assert_eq!(history[2]["status"], "assigned");
    assert_eq!(
        history[2]["prev_history_id"], history[1]["id"],
        "linked to the UNASSIGNED row"
    );
    assert_eq!(
        env.subscribers().await?,
        [json!({"type": "user", "id": env.alice})]
    );
    env.host.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_user_replaced_by_their_own_team_keeps_the_subscription() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.put(json!({"assignedTo": format!("user:{}", env.bob)}))
        .await?;
    env.put(json!({"assignedTo": format!("team:{}", env.team)}))
        .await?;
    let subs = env.subscribers().await?;
    assert!(
        subs.contains(&json!({"type": "user", "id": env.bob})),
        "{subs:?}"
    );
    assert!(
        subs.contains(&json!({"type": "team", "id": env.team})),
        "{subs:?}"
    );
    env.host.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn team_assignees_are_never_pushed_to_trackers() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.put(json!({"assignedTo": format!("team:{}", env.team)}))
        .await?;
    // Barrier: a user assignment afterwards is pushed; had the team been pushed,
    // its PUT would have come first.
    env.put(json!({"assignedTo": format!("user:{}", env.bob)}))
        .await?;
    let put = env
        .jira
        .recorder()
        .wait_for_call("PUT", ASSIGNEE_PATH)
        .await?;
    assert_eq!(put.json(), json!({"accountId": BOB_ACCOUNT_ID}));
    assert_eq!(env.jira.recorder().calls("PUT", ASSIGNEE_PATH).len(), 1);
    env.host.shutdown().await;
    Ok(())
}
