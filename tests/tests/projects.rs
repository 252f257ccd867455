//! Projects: slugs (spec §8.1), snowflake ids (§8.3) and delete (§8.4), through HTTP.

use serde_json::{Value, json};
use sqlx::{Connection, Row};
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::{TestHost, id_of};

#[tokio::test]
async fn slugs_come_from_names_and_stay_unique_per_organization() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let api = host.api();
    let org = id_of(&api.create_organization("Acme").await?)?;
    let create = |name: &'static str| {
        let api = api.clone();
        async move {
            api.post(
                &format!("/api/organizations/{org}/projects"),
                &json!({"name": name}),
            )
            .await?
            .expect(201)
        }
    };
    let first = create("Crème Brûlée API").await?;
    assert_eq!(first["slug"], "creme-brulee-api");
    let second = create("creme brulee api").await?;
    let slug = second["slug"].as_str().unwrap_or_default();
    assert!(
        slug.starts_with("creme-brulee-api-") && slug.len() > "creme-brulee-api-".len(),
        "{slug}"
    );
    let reserved = create("Settings").await?;
    let reserved = reserved["slug"].as_str().unwrap_or_default();
    assert_ne!(reserved, "settings");
    // Twelve random hex characters; in the one run in 280 where all twelve
    // are digits, Sentry's all-digit rule adds a suffix to them too.
    let (random, suffix) = reserved.split_at(reserved.len().min(12));
    assert!(
        random.len() == 12 && random.chars().all(|c| c.is_ascii_hexdigit()),
        "a reserved name gets a random 12-character slug: {reserved}"
    );
    let all_digits = random.chars().all(|c| c.is_ascii_digit());
    assert!(
        if all_digits {
            suffix.starts_with('-') && suffix.len() > 1
        } else {
            suffix.is_empty()
        },
        "a suffix only when the random part is all digits: {reserved}"
    );
    let digits = create("2024").await?;
    let digits = digits["slug"].as_str().unwrap_or_default();
    assert!(
        digits.starts_with("2024-"),
        "an all-digit slug gets a suffix: {digits}"
    );
    // An explicit slug that is taken is a conflict, not a silent rename.
    let taken = api
        .post(
            &format!("/api/organizations/{org}/projects"),
            &json!({"name": "x", "slug": "creme-brulee-api"}),
        )
        .await?;
    assert_eq!(taken.status, 409);
    host.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn organizations_projects_and_teams_get_snowflake_ids() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let api = host.api();
    let org = id_of(&api.create_organization("Acme").await?)?;
    let project = id_of(&api.create_project(org, "backend").await?)?;
    let team = id_of(&api.create_team(org, "core").await?)?;
    for id in [org, project, team] {
        assert_eq!(id >> 48, 16, "version segment of {id}");
        assert!(id < 1 << 53, "JavaScript-safe: {id}");
    }
    host.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn deleting_a_project_leaves_no_row_that_refers_to_it() -> anyhow::Result<()> {
    let mut database_url = String::new();
    let host = TestHost::start_with(|s| database_url = s.database_url.clone()).await?;
    let api = host.api();
    let org = id_of(&api.create_organization("Acme").await?)?;
    let project = id_of(&api.create_project(org, "backend").await?)?;
    let keep = id_of(&api.create_project(org, "frontend").await?)?;
    let bob = id_of(&api.create_user("bob", &[("bob@example.com", true)]).await?)?;
    api.add_member(org, bob).await?;
    let team = id_of(&api.create_team(org, "core").await?)?;
    api.add_team_project(team, project).await?;
    api.add_team_project(team, keep).await?;
    api.add_team_member(team, bob, true).await?;
    let jira = JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await?;
    let integration = id_of(
        &api.post(
            &format!("/api/organizations/{org}/integrations"),
            &json!({"provider": "jira", "input": {
                "base_url": jira.base_url(),
                "credential": {"type": "api_token", "email": "bot@example.com", "api_token": "tok"},
            }}),
        )
        .await?
        .expect(201)?,
    )?;
    let group = id_of(&api.create_group(project, "TypeError").await?)?;
    let other = id_of(&api.create_group(keep, "Kept").await?)?;
    api.link_external_issue(group, integration, "SEN-5").await?;
    api.link_external_issue(other, integration, "APP-123")
        .await?;
    for g in [group, other] {
        api.update_group(
            g,
            &json!({"assignedTo": format!("user:{bob}"), "status": "resolved"}),
        )
        .await?
        .expect(200)?;
    }
    let deleted = api
        .request(
            reqwest::Method::DELETE,
            &format!("/api/projects/{project}"),
            None,
        )
        .await?;
    assert_eq!(deleted.status, 204);
    assert_eq!(api.get(&format!("/api/groups/{group}")).await?.status, 404);
    // The other project's group is untouched.
    let kept: Value = api.group(other).await?;
    assert_eq!(kept["status"], "resolved");

    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&database_url).await?;
    let postgres = database_url.starts_with("postgres");
    let tables: Vec<String> = sqlx::query_scalar(if postgres {
        "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'"
    })
    .fetch_all(&mut db)
    .await?;
    let mut checked = 0;
    for table in tables {
        let columns: Vec<String> = sqlx::query(&if postgres {
            format!(
                "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = '{table}'"
            )
        } else {
            format!("SELECT name FROM pragma_table_info('{table}')")
        })
        .fetch_all(&mut db)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
        for (column, value) in [("project_id", project), ("group_id", group)] {
            if columns.iter().any(|c| c == column) {
                let n: i64 = sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM {table} WHERE {column} = $1"
                ))
                .bind(value)
                .fetch_one(&mut db)
                .await?;
                assert_eq!(n, 0, "{table}.{column} still refers to the deleted project");
                checked += 1;
            }
        }
        if table == "projects" || table == "groups" {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE id = $1"))
                .bind(if table == "projects" { project } else { group })
                .fetch_one(&mut db)
                .await?;
            assert_eq!(n, 0, "{table} row still there");
        }
    }
    assert!(
        checked >= 8,
        "every table with a project or group column was checked ({checked})"
    );
    let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM external_issues ORDER BY key")
        .fetch_all(&mut db)
        .await?;
    assert_eq!(
        keys,
        vec!["APP-123".to_string()],
        "only the issue still linked elsewhere is kept"
    );
    host.shutdown().await;
    Ok(())
}
