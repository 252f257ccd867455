//! A plain, unauthenticated [`JiraApi`] for the tests of this crate.

use serde_json::Value;
use trackbridge_plugin_sdk::Result;
use trackbridge_plugin_sdk::http::{Method, Request, Response};

use crate::JiraApi;

pub const BASE: &str = "https://example.atlassian.net";

pub struct TestClient;

impl JiraApi for TestClient {
    const USER_FIELD: &'static str = "user";
    const USER_SEARCH_PARAM: &'static str = "who";

    fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Response> {
        let mut request =
            Request::new(method, format!("{BASE}{path}")).header("accept", "application/json");
        for (k, v) in params {
            request = request.query(*k, *v);
        }
        if let Some(body) = body {
            request = request.json(body)?;
        }
        request.send()?.error_for_status()
    }
}
