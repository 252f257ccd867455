//! A provider that misbehaves on request. Its webhook body says what to do:
//! `panic`, `loop` (spin forever), `oom` (grow memory past any cap), or
//! anything else (answer 404 "alive", proving the plugin still serves).
//! Its installation fetches `fetch_url` (a host it was not given) before
//! `base_url` (the host it was given).

use trackbridge_plugin_sdk::http::Request;
use trackbridge_plugin_sdk::provider::*;
use trackbridge_plugin_sdk::serde_json::{self, Value};
use trackbridge_plugin_sdk::{Error, Provider, Result};

struct Faulty;

impl Provider for Faulty {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            routes: vec![Route::new("POST", "/extensions/faulty/hook/")],
            config_schema: r#"{"type":"object"}"#.into(),
            url_fields: vec!["base_url".into()],
            allowed_host_patterns: vec![],
            ..ProviderInfo::new("faulty", "0.0.1-test", "Faulty")
        }
    }

    fn build_integration(input: Value) -> Result<IntegrationData> {
        let url = |field: &str| {
            input
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| Error::invalid_input(format!("`{field}` is required")))
        };
        let forbidden = Request::get(url("fetch_url")?).send();
        let allowed = Request::get(url("base_url")?).send()?;
        Ok(IntegrationData::new(
            "faulty",
            "faulty",
            &serde_json::json!({
                "forbidden_fetch": match forbidden {
                    Ok(r) => format!("answered {}", r.status),
                    Err(e) => format!("refused: {}", e.message()),
                },
                "allowed_fetch": allowed.status,
            }),
            &serde_json::json!({}),
        ))
    }

    fn verify_webhook(request: &IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
        match request.body.as_slice() {
            b"panic" => panic!("faulty plugin was asked to panic"),
            b"loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            b"oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 8 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            _ => Err(Rejection::new(404, "alive")),
        }
    }
}

trackbridge_plugin_sdk::export_provider!(Faulty);
