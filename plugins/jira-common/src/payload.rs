//! Reading an issue-updated delivery. A real one carries the whole issue —
//! seven kilobytes of fields — and the plugins read a dozen values of it;
//! building a JSON tree of all of it was most of what verifying and handling
//! a delivery cost inside the sandbox. So the body is read once into a small
//! tree of just the values the plugins look at, skipping the rest as it is
//! read, and every reader works on that tree as it did on the whole one.

use serde::Deserialize;
use serde_json::{Map, Value};

/// `T`, read from a JSON object only: serde would also fill a struct from an
/// array, by position, which no delivery means.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Obj<T>, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Visit(std::marker::PhantomData))
            .map(Obj)
    }
}

/// The parts of a delivery the plugins read. `null` and absent are one to
/// every reader, so a `null` is left out.
#[derive(Deserialize)]
struct Delivery {
    #[serde(default)]
    timestamp: Option<Value>,
    #[serde(default, rename = "webhookEvent")]
    webhook_event: Option<Value>,
    #[serde(default)]
    changelog: Option<Value>,
    #[serde(default)]
    issue: Option<Obj<Issue>>,
    #[serde(default)]
    user: Option<Obj<SelfLink>>,
}

#[derive(Deserialize)]
struct Issue {
    #[serde(default)]
    key: Option<Value>,
    #[serde(default, rename = "self")]
    self_link: Option<Value>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    fields: Option<Obj<Fields>>,
}

#[derive(Deserialize)]
struct Fields {
    #[serde(default)]
    assignee: Option<Value>,
    #[serde(default)]
    project: Option<Value>,
}

#[derive(Deserialize)]
struct SelfLink {
    #[serde(default, rename = "self")]
    self_link: Option<Value>,
}

fn object(entries: impl IntoIterator<Item = (&'static str, Option<Value>)>) -> Value {
    Value::Object(
        entries
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v?)))
            .collect::<Map<_, _>>(),
    )
}

impl Delivery {
    fn into_value(self) -> Value {
        let issue = self.issue.map(|Obj(i)| {
            let fields = i
                .fields
                .map(|Obj(f)| object([("assignee", f.assignee), ("project", f.project)]));
            object([
                ("key", i.key),
                ("self", i.self_link),
                ("id", i.id),
                ("fields", fields),
            ])
        });
        let user = self.user.map(|Obj(u)| object([("self", u.self_link)]));
        object([
            ("timestamp", self.timestamp),
            ("webhookEvent", self.webhook_event),
            ("changelog", self.changelog),
            ("issue", issue),
            ("user", user),
        ])
    }
}

/// The delivery `body` as the plugins read it: the values they use, in the
/// places they had in the body. A body of another shape than Jira's (an
/// array, an issue that is not an object) is read whole and cut down the
/// same way, so that readers see exactly what they would have seen.
pub fn parse(body: &[u8]) -> Result<Value, serde_json::Error> {
    match serde_json::from_slice::<Obj<Delivery>>(body) {
        Ok(Obj(delivery)) => Ok(delivery.into_value()),
        Err(_) => Ok(reduce(serde_json::from_slice::<Value>(body)?)),
    }
}

/// `map[key]`, taken out, unless it is `null`.
fn take(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    map.remove(key).filter(|v| !v.is_null())
}

/// The same values taken from a whole tree.
fn reduce(whole: Value) -> Value {
    let Value::Object(mut top) = whole else {
        return whole;
    };
    let issue = take(&mut top, "issue").map(|issue| match issue {
        Value::Object(mut issue) => {
            let fields = take(&mut issue, "fields").map(|fields| match fields {
                Value::Object(mut f) => object([
                    ("assignee", take(&mut f, "assignee")),
                    ("project", take(&mut f, "project")),
                ]),
                other => other,
            });
            object([
                ("key", take(&mut issue, "key")),
                ("self", take(&mut issue, "self")),
                ("id", take(&mut issue, "id")),
                ("fields", fields),
            ])
        }
        other => other,
    });
    let user = take(&mut top, "user").map(|user| match user {
        Value::Object(mut u) => object([("self", take(&mut u, "self"))]),
        other => other,
    });
    object([
        ("timestamp", take(&mut top, "timestamp")),
        ("webhookEvent", take(&mut top, "webhookEvent")),
        ("changelog", take(&mut top, "changelog")),
        ("issue", issue),
        ("user", user),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> Value {
        json!({
            "timestamp": 1_700_000_000_123u64,
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_assigned",
            "user": {"self": "https://acme.atlassian.net/rest/api/2/user?accountId=1", "name": "x"},
            "changelog": {"id": "10001", "items": [{"field": "assignee", "to": "x"}]},
            "issue": {
                "id": "10000", "key": "APP-1", "self": "https://acme.atlassian.net/rest/api/2/issue/10000",
                "fields": {
                    "assignee": {"accountId": "a", "emailAddress": "bob@example.com"},
                    "project": {"id": "10100", "key": "APP"},
                    "summary": "long", "description": "longer", "labels": ["a", "b"],
                    "customfield_10000": {"nested": [1, 2, {"deep": true}]}
                }
            }
        })
    }

    #[test]
    fn keeps_what_the_readers_read_and_nothing_else() {
        let reduced = parse(full().to_string().as_bytes()).unwrap();
        assert_eq!(
            reduced,
            json!({
                "timestamp": 1_700_000_000_123u64,
                "webhookEvent": "jira:issue_updated",
                "user": {"self": "https://acme.atlassian.net/rest/api/2/user?accountId=1"},
                "changelog": {"id": "10001", "items": [{"field": "assignee", "to": "x"}]},
                "issue": {
                    "id": "10000", "key": "APP-1", "self": "https://acme.atlassian.net/rest/api/2/issue/10000",
                    "fields": {
                        "assignee": {"accountId": "a", "emailAddress": "bob@example.com"},
                        "project": {"id": "10100", "key": "APP"}
                    }
                }
            })
        );
    }

    #[test]
    fn other_shapes_are_cut_down_the_same_way() {
        for body in [
            json!([1, 2]),
            json!({"issue": "not an object", "timestamp": 5}),
            json!({"issue": {"fields": [1], "key": "K"}}),
            json!({"timestamp": "soon", "changelog": null, "issue": {"key": 7}}),
        ] {
            let fast = parse(body.to_string().as_bytes()).unwrap();
            assert_eq!(fast, reduce(body.clone()), "{body}");
        }
        assert_eq!(
            parse(full().to_string().as_bytes()).unwrap(),
            reduce(full())
        );
        assert!(parse(b"{not json").is_err());
    }

    #[test]
    fn null_and_absent_read_alike() {
        let reduced = parse(br#"{"issue": {"key": "A-1", "fields": {"assignee": null}}}"#).unwrap();
        assert_eq!(reduced, json!({"issue": {"key": "A-1", "fields": {}}}));
    }
}
