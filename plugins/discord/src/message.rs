//! The message about a group: plain content (read by notifications and
//! screen readers) plus one embed with the same facts as fields.
//!
//! Group titles, names and links are user-controlled: markdown is escaped and
//! `allowed_mentions` is empty, so an `@everyone` in a title pings no one
//! (it still shows as typed).

use serde_json::{Value, json};
use trackbridge_plugin_sdk::notifier::{GroupEvent, GroupSummary};

/// Discord's limits (API docs, "Create Message" and "Embed Limits").
const CONTENT_MAX: usize = 2000;
const EMBED_TITLE_MAX: usize = 256;
const EMBED_DESCRIPTION_MAX: usize = 4096;
const FIELD_VALUE_MAX: usize = 1024;

const COLOR_RESOLVED: u32 = 0x2E_CC_71;
const COLOR_OPEN: u32 = 0xE7_4C_3C;

/// Who the group is assigned to, in words.
pub fn assignee_text(group: &GroupSummary) -> String {
    match group.assignee.as_deref().map(str::trim) {
        Some(a) if !a.is_empty() => a.to_string(),
        _ => "Unassigned".to_string(),
    }
}

/// What happened, as a sentence fragment after the title.
pub fn event_text(group: &GroupSummary, event: GroupEvent) -> String {
    match event {
        GroupEvent::Assigned => match group.assignee.as_deref().map(str::trim) {
            Some(a) if !a.is_empty() => format!("was assigned to {}", escape(a)),
            _ => "was assigned".to_string(),
        },
        GroupEvent::Unassigned => "was unassigned".to_string(),
        GroupEvent::Resolved => "was resolved".to_string(),
        GroupEvent::Unresolved => "was reopened (unresolved)".to_string(),
    }
}

/// The message body fields shared by create and edit: `content`, `embeds`
/// and an empty `allowed_mentions`.
pub fn render(group: &GroupSummary, event: GroupEvent) -> Value {
    let title = escape(single_line(&group.title));
    let assignee = escape(&assignee_text(group));
    let status = escape(&group.status);
    let project = escape(&group.project);
    let links: Vec<String> = group.links.iter().map(|l| escape(single_line(l))).collect();

    let mut content = format!(
        "**{title}** {}.\nStatus: **{status}** · Assignee: **{assignee}** · Project: **{project}**",
        event_text(group, event)
    );
    if !links.is_empty() {
        content.push_str(&format!("\nLinked issues: {}", links.join(", ")));
    }

    let mut fields = vec![
        json!({"name": "Status", "value": truncate(&status, FIELD_VALUE_MAX), "inline": true}),
        json!({"name": "Assignee", "value": truncate(&assignee, FIELD_VALUE_MAX), "inline": true}),
        json!({"name": "Project", "value": truncate(&project, FIELD_VALUE_MAX), "inline": true}),
    ];
    if !links.is_empty() {
        fields.push(json!({
            "name": "Linked issues",
            "value": truncate(&links.join("\n"), FIELD_VALUE_MAX),
            "inline": false
        }));
    }
    let resolved = group.status.eq_ignore_ascii_case("resolved");
    let embed = json!({
        "title": truncate(single_line(&group.title), EMBED_TITLE_MAX),
        "description": truncate(&format!("Last change: {} {}.", title, event_text(group, event)), EMBED_DESCRIPTION_MAX),
        "color": if resolved { COLOR_RESOLVED } else { COLOR_OPEN },
        "fields": fields,
        "footer": {"text": format!("trackbridge group {}", group.id)},
    });
    json!({
        "content": truncate(&content, CONTENT_MAX),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

/// The first line only: a title with newlines would break the layout.
fn single_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// Escapes Discord markdown so user text shows as typed.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '#' | '[' | ']' | '<'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// At most `max` characters (Discord counts characters), with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    // Never end on a lone escaping backslash.
    if out.ends_with('\\') {
        out.pop();
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupSummary {
        GroupSummary {
            id: 42,
            title: "TypeError: x is undefined".into(),
            status: "unresolved".into(),
            project: "web-frontend".into(),
            assignee: Some("Bob (bob@example.com)".into()),
            links: vec!["Jira SEN-5".into()],
        }
    }

    #[test]
    fn content_names_everything() {
        let body = render(&group(), GroupEvent::Assigned);
        let content = body["content"].as_str().unwrap();
        assert!(content.contains("TypeError: x is undefined"), "{content}");
        assert!(
            content.contains("was assigned to Bob (bob@example.com)"),
            "{content}"
        );
        assert!(content.contains("Status: **unresolved**"), "{content}");
        assert!(content.contains("Project: **web-frontend**"), "{content}");
        assert!(content.contains("Linked issues: Jira SEN-5"), "{content}");
        assert_eq!(body["allowed_mentions"], json!({"parse": []}));
        let embed = &body["embeds"][0];
        assert_eq!(embed["title"], "TypeError: x is undefined");
        assert_eq!(embed["fields"][1]["value"], "Bob (bob@example.com)");
        assert_eq!(embed["fields"][3]["value"], "Jira SEN-5");
        assert_eq!(embed["footer"]["text"], "trackbridge group 42");
        assert_eq!(embed["color"], COLOR_OPEN);
    }

    #[test]
    fn unassigned_and_resolved() {
        let mut g = group();
        g.assignee = None;
        g.links.clear();
        let body = render(&g, GroupEvent::Unassigned);
        let content = body["content"].as_str().unwrap();
        assert!(content.contains("was unassigned"), "{content}");
        assert!(content.contains("Assignee: **Unassigned**"), "{content}");
        assert!(!content.contains("Linked issues"), "{content}");
        assert_eq!(body["embeds"][0]["fields"].as_array().unwrap().len(), 3);
        g.status = "resolved".into();
        let body = render(&g, GroupEvent::Resolved);
        assert!(body["content"].as_str().unwrap().contains("was resolved"));
        assert_eq!(body["embeds"][0]["color"], COLOR_RESOLVED);
    }

    #[test]
    fn user_text_cannot_ping_or_format() {
        let mut g = group();
        g.title = "@everyone **bold**\nsecond line".into();
        let content = render(&g, GroupEvent::Resolved)["content"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            content.starts_with("**@everyone \\*\\*bold\\*\\***"),
            "{content}"
        );
        assert!(!content.contains("second line"));
    }

    #[test]
    fn limits_hold() {
        let mut g = group();
        g.title = "é".repeat(5000);
        g.links = (0..500).map(|i| format!("Jira LONG-{i}")).collect();
        let body = render(&g, GroupEvent::Assigned);
        assert!(body["content"].as_str().unwrap().chars().count() <= CONTENT_MAX);
        let embed = &body["embeds"][0];
        assert!(embed["title"].as_str().unwrap().chars().count() <= EMBED_TITLE_MAX);
        for f in embed["fields"].as_array().unwrap() {
            assert!(f["value"].as_str().unwrap().chars().count() <= FIELD_VALUE_MAX);
        }
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ab\\*x", 4), "ab…");
    }
}
