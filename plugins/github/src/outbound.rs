//! Group changes pushed to GitHub (spec §3.2, §3.3): close and reopen, and
//! assigning by adding the mapped login and removing only the person this
//! product assigned before, so co-assignees set in GitHub stay.

use serde_json::json;
use trackbridge_plugin_sdk::http::Method;
use trackbridge_plugin_sdk::provider::{SyncOutcome, UserRef};
use trackbridge_plugin_sdk::url::encode_component;
use trackbridge_plugin_sdk::{Error, Result, json as j};

use crate::Repo;
use crate::api::check;
use crate::issue::{IssueKey, assignee_logins, has_login};
use crate::issues_api::{assigned_by, fetch_issue};

fn gone(key: &IssueKey) -> Error {
    Error::rejected(format!(
        "GitHub issue {key} does not exist (deleted or transferred)"
    ))
}

pub fn sync_status(repo: &Repo, key: &IssueKey, resolve: bool) -> Result<SyncOutcome> {
    let issue = fetch_issue(&repo.client, key)?.ok_or_else(|| gone(key))?;
    let target = if resolve { "closed" } else { "open" };
    // Read before write: no call, and no echo, when it is there already.
    if j::str_at(&issue, &["state"]) == Some(target) {
        return Ok(SyncOutcome::unchanged(format!("{key} is already {target}")));
    }
    let body = if resolve {
        json!({"state": "closed", "state_reason": "completed"})
    } else {
        json!({"state": "open"})
    };
    repo.client.call(Method::Patch, &key.path(), Some(&body))?;
    Ok(SyncOutcome::changed())
}

/// The GitHub login of the user: the login of an identity operators mapped,
/// else the current login of a mapped id (logins change, ids do not).
fn login_of(repo: &Repo, user: &UserRef) -> Result<Option<String>> {
    if let Some(login) = user.identities.iter().find_map(|i| i.login.clone()) {
        return Ok(Some(login));
    }
    let Some(id) = user.identity_id() else {
        return Ok(None);
    };
    let id = id
        .parse::<u64>()
        .map_err(|_| Error::rejected(format!("{id:?} is not a GitHub user id")))?;
    let found = repo.client.get(&format!("/user/{id}"))?;
    Ok(j::non_empty_str_at(&found, &["login"]).map(str::to_string))
}

fn remove(repo: &Repo, key: &IssueKey, login: &str) -> Result<()> {
    let body = json!({"assignees": [login]});
    repo.client.call(
        Method::Delete,
        &format!("{}/assignees", key.path()),
        Some(&body),
    )?;
    Ok(())
}

pub fn sync_assignee(repo: &Repo, key: &IssueKey, user: Option<&UserRef>) -> Result<SyncOutcome> {
    let issue = fetch_issue(&repo.client, key)?.ok_or_else(|| gone(key))?;
    let current = assignee_logins(&issue);
    let ours = match &repo.actor {
        Some(actor) => assigned_by(&repo.client, key, actor)?.filter(|l| has_login(&current, l)),
        None => None,
    };
    let Some(user) = user else {
        return match ours {
            Some(ours) => remove(repo, key, &ours).map(|()| SyncOutcome::changed()),
            None => Ok(SyncOutcome::unchanged(
                "nobody trackbridge assigned is assigned; assignees set in GitHub are left as they are",
            )),
        };
    };
    let Some(login) = login_of(repo, user)? else {
        return Ok(SyncOutcome::unchanged(
            "the user has no GitHub identity mapped at this integration (GitHub assigns by login)",
        ));
    };
    let previous = ours.filter(|o| !o.eq_ignore_ascii_case(&login));
    if has_login(&current, &login) {
        return match previous {
            Some(previous) => remove(repo, key, &previous).map(|()| SyncOutcome::changed()),
            None => Ok(SyncOutcome::unchanged(format!(
                "@{login} is already assigned to {key}"
            ))),
        };
    }
    let check_path = format!(
        "/repos/{}/assignees/{}",
        key.full_name,
        encode_component(&login)
    );
    let response = repo.client.send(Method::Get, &check_path, None)?;
    if response.status == 404 {
        return Err(Error::rejected(format!(
            "GitHub user @{login} cannot be assigned to issues in {} (assignees need push access to the repository)",
            key.full_name
        )));
    }
    check(
        response,
        &format!("checking whether @{login} can be assigned"),
    )?;
    let added = repo.client.call(
        Method::Post,
        &format!("{}/assignees", key.path()),
        Some(&json!({"assignees": [login]})),
    )?;
    // GitHub may drop a login it cannot assign without saying so.
    if !has_login(&assignee_logins(&added), &login) {
        return Err(Error::rejected(format!(
            "GitHub did not assign @{login} to {key}"
        )));
    }
    if let Some(previous) = previous {
        remove(repo, key, &previous)?;
    }
    Ok(SyncOutcome::changed())
}
