//! The operator console under `/console`, driven over HTTP as a browser
//! without JavaScript would (forms and links), its HTML parsed: sign-in and
//! its cookie, every page with real data, the delivery filters, masking of
//! credentials in a stored webhook, CSRF refusal, session expiry, replaying
//! dead letters against the simulated Jira, sync settings through the API's
//! validation, a refused plugin upload, and the audit record.
//!
//! Each test runs on the run's database (SQLite, or PostgreSQL when
//! `TRACKBRIDGE_TEST_POSTGRES` is set).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use scraper::{Html, Selector};
use serde_json::{Value, json};
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::scenario::{JiraScenario, deliver, http_client, jobs, wait_queue_idle};
use trackbridge_e2e::test_plugins::test_plugin;
use trackbridge_e2e::{ADMIN_TOKEN, TestHost};

const QUEUE_WAIT: Duration = Duration::from_secs(30);
const SEN5_TRANSITIONS: &str = "/rest/api/2/issue/SEN-5/transitions";
const CANARY: &str = "CANARY-7f3a9c-do-not-show";

fn jira_auth() -> JiraAuth {
    JiraAuth::basic("bot@example.com", "tok")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One answer of the console.
struct Page {
    status: u16,
    location: Option<String>,
    set_cookie: Vec<String>,
    body: String,
}

impl Page {
    fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// The text of every element matching `selector`.
    fn texts(&self, selector: &str) -> anyhow::Result<Vec<String>> {
        let selector = Selector::parse(selector)
            .map_err(|e| anyhow::anyhow!("selector `{selector}`: {e:?}"))?;
        Ok(self
            .html()
            .select(&selector)
            .map(|e| e.text().collect::<String>().trim().to_owned())
            .collect())
    }

    /// `attr` of every element matching `selector`.
    fn attrs(&self, selector: &str, attr: &str) -> anyhow::Result<Vec<String>> {
        let selector = Selector::parse(selector)
            .map_err(|e| anyhow::anyhow!("selector `{selector}`: {e:?}"))?;
        Ok(self
            .html()
            .select(&selector)
            .filter_map(|e| e.value().attr(attr).map(str::to_owned))
            .collect())
    }

    fn expect(self, status: u16) -> anyhow::Result<Page> {
        ensure!(
            self.status == status,
            "expected {status}, got {} (location {:?}): {}",
            self.status,
            self.location,
            self.body
        );
        Ok(self)
    }

    /// The form controls no `<label for>` names (accessibility).
    fn unlabelled_controls(&self) -> anyhow::Result<Vec<String>> {
        let labels: BTreeSet<String> = self.attrs("label[for]", "for")?.into_iter().collect();
        let html = self.html();
        let controls = Selector::parse("input:not([type=hidden]), select, textarea")
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(html
            .select(&controls)
            .filter(|c| !c.value().attr("id").is_some_and(|id| labels.contains(id)))
            .map(|c| c.html())
            .collect())
    }

    /// The job ids a deliveries page lists.
    fn job_ids(&self) -> anyhow::Result<BTreeSet<i64>> {
        Ok(self
            .attrs("tr.job", "data-id")?
            .iter()
            .filter_map(|id| id.parse().ok())
            .collect())
    }
}

/// A browser without JavaScript: follows nothing by itself, keeps the session cookie.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(host: &TestHost) -> anyhow::Result<Browser> {
        Ok(Browser {
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()?,
            base: host.base_url(),
            cookie: None,
        })
    }

    async fn signed_in(host: &TestHost) -> anyhow::Result<Browser> {
        let mut browser = Browser::new(host)?;
        let page = browser.sign_in(ADMIN_TOKEN, false).await?.expect(303)?;
        ensure!(
            browser.cookie.is_some(),
            "no session cookie: {:?}",
            page.set_cookie
        );
        Ok(browser)
    }

    async fn read(response: reqwest::Response) -> anyhow::Result<Page> {
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let set_cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        Ok(Page {
            status,
            location,
            set_cookie,
            body: response.text().await?,
        })
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => request.header("cookie", format!("trackbridge_console={c}")),
            None => request,
        }
    }

    async fn get(&self, path: &str) -> anyhow::Result<Page> {
        let request = self.with_cookie(self.http.get(format!("{}{path}", self.base)));
        Browser::read(
            request
                .send()
                .await
                .with_context(|| format!("GET {path}"))?,
        )
        .await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<Page> {
        let request = self.with_cookie(self.http.post(format!("{}{path}", self.base)).form(form));
        Browser::read(
            request
                .send()
                .await
                .with_context(|| format!("POST {path}"))?,
        )
        .await
    }

    /// The sign-in form: its CSRF token and the pre-session cookie holding it.
    async fn login_form(&self, https: bool) -> anyhow::Result<(Page, LoginForm)> {
        let mut request = self.http.get(format!("{}/console/login", self.base));
        if https {
            request = request.header("x-forwarded-proto", "https");
        }
        let page = Browser::read(request.send().await?).await?.expect(200)?;
        let form = LoginForm::of(&page)?;
        Ok((page, form))
    }

    /// Sign in as a browser does: load the form, then send it.
    async fn sign_in(&mut self, token: &str, https: bool) -> anyhow::Result<Page> {
        let (_, form) = self.login_form(https).await?;
        self.post_sign_in(token, Some(&form.csrf), Some(&form.cookie), https)
            .await
    }

    /// `POST /console/login` with the form's `csrf` field and the pre-session
    /// `cookie` as given (either may be left out, as a forged post would).
    async fn post_sign_in(
        &mut self,
        token: &str,
        csrf: Option<&str>,
        cookie: Option<&str>,
        https: bool,
    ) -> anyhow::Result<Page> {
        let mut form = vec![("token", token)];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        let mut request = self
            .http
            .post(format!("{}/console/login", self.base))
            .form(&form);
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("trackbridge_console_login={cookie}"));
        }
        if https {
            request = request.header("x-forwarded-proto", "https");
        }
        let page = Browser::read(request.send().await?).await?;
        if let Some(cookie) = page.set_cookie.iter().find_map(|c| {
            c.strip_prefix("trackbridge_console=")
                .and_then(|rest| rest.split(';').next())
                .filter(|v| !v.is_empty())
        }) {
            self.cookie = Some(cookie.to_owned());
        }
        Ok(page)
    }

    /// The plugin upload form, sent as a browser sends it (multipart).
    async fn upload(&self, csrf: &str, module: &[u8]) -> anyhow::Result<Page> {
        let boundary = "console-test-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"module\"; filename=\"plugin.wasm\"\r\n\
             Content-Type: application/wasm\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(module);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let request = self.with_cookie(
            self.http
                .post(format!("{}/console/plugins", self.base))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body),
        );
        Browser::read(request.send().await?).await
    }

    /// The CSRF token the session's forms carry.
    async fn csrf(&self) -> anyhow::Result<String> {
        let page = self.get("/console").await?.expect(200)?;
        page.attrs("input[name=csrf]", "value")?
            .into_iter()
            .next()
            .context("no CSRF token on the overview")
    }
}

/// What a sign-in form page hands the browser: the token in the form and
/// the pre-session cookie's value and attributes.
struct LoginForm {
    csrf: String,
    cookie: String,
    set_cookie: String,
}

impl LoginForm {
    fn of(page: &Page) -> anyhow::Result<LoginForm> {
        let set_cookie = page
            .set_cookie
            .iter()
            .find(|c| c.starts_with("trackbridge_console_login="))
            .with_context(|| format!("no pre-session cookie: {:?}", page.set_cookie))?
            .clone();
        let cookie = set_cookie
            .strip_prefix("trackbridge_console_login=")
            .and_then(|rest| rest.split(';').next())
            .unwrap_or_default()
            .to_owned();
        let csrf = page
            .attrs("form[action='/console/login'] input[name=csrf]", "value")?
            .into_iter()
            .next()
            .context("no CSRF token in the sign-in form")?;
        Ok(LoginForm {
            csrf,
            cookie,
            set_cookie,
        })
    }
}

/// One number from `sql` on the test's database.
async fn count(host: &TestHost, sql: &str) -> anyhow::Result<i64> {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(host.database().url()).await?;
    Ok(sqlx::query_scalar(sql).fetch_one(&mut conn).await?)
}

/// Run `sql` on the test's database.
async fn execute(host: &TestHost, sql: &str) -> anyhow::Result<u64> {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(host.database().url()).await?;
    Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
}

async fn job(host: &TestHost, id: i64) -> anyhow::Result<Value> {
    host.api()
        .get(&format!("/api/jobs/{id}"))
        .await?
        .expect(200)
}

/// Wait until at least `n` jobs match `query`.
async fn wait_for_jobs(host: &TestHost, query: &str, n: usize) -> anyhow::Result<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + QUEUE_WAIT;
    loop {
        let found = jobs(host.api(), query).await?;
        if found.len() >= n {
            return Ok(found);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("no {n} job(s) with {query} after {QUEUE_WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A Jira installation whose status sync to SEN-5 is dead-lettered: Jira
/// answers 500 to everything until its faults are cleared.
async fn dead_letter(host: &TestHost, jira: &JiraSim) -> anyhow::Result<(JiraScenario, i64)> {
    let api = host.api();
    let scenario = JiraScenario::setup(api, jira).await?;
    let group = scenario.linked_group(api, "SEN-5").await?;
    jira.recorder().clear();
    jira.recorder().fail_next(1000, 500);
    api.update_group(group, &json!({"status": "resolved"}))
        .await?
        .expect(200)?;
    let dead = wait_for_jobs(host, "kind=sync_status&state=dead", 1).await?;
    let id = dead[0]["id"].as_i64().context("job id")?;
    Ok((scenario, id))
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_takes_only_the_admin_token_and_sets_a_strict_session_cookie() -> anyhow::Result<()>
{
    let host = TestHost::start().await?;
    let mut browser = Browser::new(&host)?;

    // Without a session every page sends to the sign-in form.
    let page = browser.get("/console/deliveries").await?.expect(303)?;
    ensure!(
        page.location.as_deref() == Some("/console/login"),
        "{:?}",
        page.location
    );
    let form = browser.get("/console/login").await?.expect(200)?;
    ensure!(
        form.attrs("label[for=token]", "for")? == ["token"],
        "the token field is labelled"
    );

    let refused = browser.sign_in("not-the-token", false).await?.expect(403)?;
    ensure!(refused.set_cookie.is_empty(), "{:?}", refused.set_cookie);
    ensure!(browser.cookie.is_none());
    ensure!(
        refused
            .texts("[role=alert]")?
            .concat()
            .contains("not the admin token"),
        "{}",
        refused.body
    );
    let empty = browser.sign_in("", false).await?.expect(403)?;
    ensure!(empty.set_cookie.is_empty());

    let ok = browser.sign_in(ADMIN_TOKEN, false).await?.expect(303)?;
    ensure!(ok.location.as_deref() == Some("/console"));
    let cookie = ok.set_cookie.first().context("a cookie")?;
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=28800",
    ] {
        ensure!(cookie.contains(part), "{part} missing: {cookie}");
    }
    ensure!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    browser.get("/console").await?.expect(200)?;

    let behind_https = Browser::new(&host)?
        .sign_in(ADMIN_TOKEN, true)
        .await?
        .expect(303)?;
    let cookie = behind_https.set_cookie.first().context("a cookie")?;
    ensure!(cookie.contains("; Secure"), "over HTTPS: {cookie}");

    // Sign-out ends the session server-side.
    let csrf = browser.csrf().await?;
    browser
        .post("/console/logout", &[("csrf", &csrf)])
        .await?
        .expect(303)?;
    let after = browser.get("/console").await?.expect(303)?;
    ensure!(after.location.as_deref() == Some("/console/login"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_without_the_form_token_makes_no_session() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut browser = Browser::new(&host)?;
    let (_, form) = browser.login_form(false).await?;
    ensure!(form.csrf.len() >= 32, "a random token: {}", form.csrf);
    ensure!(form.cookie == form.csrf, "the form echoes its cookie");
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console/login",
        "Max-Age=",
    ] {
        ensure!(
            form.set_cookie.contains(part),
            "{part} missing: {}",
            form.set_cookie
        );
    }
    ensure!(!form.set_cookie.contains("Secure"), "plain HTTP");
    let (_, over_https) = Browser::new(&host)?.login_form(true).await?;
    ensure!(over_https.set_cookie.contains("; Secure"));
    ensure!(over_https.csrf != form.csrf, "each form has its own token");

    // The right admin token, but not the form's token as its cookie holds it:
    // no field, no cookie (a post from another site), a wrong field, and the
    // token of another browser's form.
    let forged: [(Option<&str>, Option<&str>); 5] = [
        (None, None),
        (Some(&form.csrf), None),
        (None, Some(&form.cookie)),
        (Some("forged"), Some(&form.cookie)),
        (Some(&over_https.csrf), Some(&form.cookie)),
    ];
    let mut last = None;
    for (csrf, cookie) in forged {
        let refused = browser
            .post_sign_in(ADMIN_TOKEN, csrf, cookie, false)
            .await?
            .expect(403)?;
        ensure!(
            !refused
                .set_cookie
                .iter()
                .any(|c| c.starts_with("trackbridge_console=")),
            "a session cookie: {:?}",
            refused.set_cookie
        );
        ensure!(browser.cookie.is_none());
        let alert = refused.texts("[role=alert]")?.concat();
        ensure!(
            alert.contains("security token is missing or wrong")
                && alert.contains("Nothing was changed"),
            "{}",
            refused.body
        );
        last = Some(refused);
    }
    ensure!(count(&host, "SELECT COUNT(*) FROM console_sessions").await? == 0);
    ensure!(count(&host, "SELECT COUNT(*) FROM console_audit").await? == 0);

    // The refusal hands out a fresh form, which signs in.
    let retry = LoginForm::of(&last.context("a refusal")?)?;
    ensure!(retry.csrf != form.csrf && retry.cookie == retry.csrf);
    let ok = browser
        .post_sign_in(ADMIN_TOKEN, Some(&retry.csrf), Some(&retry.cookie), false)
        .await?
        .expect(303)?;
    ensure!(browser.cookie.is_some(), "{:?}", ok.set_cookie);
    ensure!(
        ok.set_cookie
            .iter()
            .any(|c| c.starts_with("trackbridge_console_login=;") && c.contains("Max-Age=0")),
        "the form's token is cleared: {:?}",
        ok.set_cookie
    );
    browser.get("/console").await?.expect(200)?;
    ensure!(count(&host, "SELECT COUNT(*) FROM console_sessions").await? == 1);

    // With the first form's own pair it works too.
    let mut other = Browser::new(&host)?;
    other
        .post_sign_in(ADMIN_TOKEN, Some(&form.csrf), Some(&form.cookie), false)
        .await?
        .expect(303)?;
    ensure!(other.cookie.is_some());
    ensure!(count(&host, "SELECT COUNT(*) FROM console_sessions").await? == 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_with_real_data() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    scenario.linked_group(api, "SEN-5").await?;
    let event = scenario.assignee_event("SEN-5", Some("bob@example.com"), now_ms());
    deliver(&http_client(), &host.base_url(), &event, "d-pages").await?;
    wait_queue_idle(api, QUEUE_WAIT).await?;
    let browser = Browser::signed_in(&host).await?;
    let integration = scenario.integration.to_string();
    let form = browser.get("/console/login").await?.expect(200)?;

    let overview = browser.get("/console").await?.expect(200)?;
    let row = format!("tr.integration[data-id=\"{integration}\"]");
    ensure!(
        overview.texts(&format!("{row} td.status"))? == ["active"],
        "{}",
        overview.body
    );
    ensure!(overview.texts(&format!("{row} td.depth"))? == ["0"]);
    let serving = api.serving_version("jira").await?;
    ensure!(
        overview.texts("tr.plugin[data-name=jira] td.version")? == [serving.clone()],
        "{}",
        overview.body
    );
    ensure!(overview.texts("tr.plugin[data-name=jira] td.probation")?[0].contains("probation"));

    let webhook = jobs(api, "kind=webhook").await?;
    let id = webhook[0]["id"].as_i64().context("id")?;
    let list = browser.get("/console/deliveries").await?.expect(200)?;
    ensure!(list.job_ids()?.contains(&id), "{}", list.body);
    ensure!(list.texts("label")?.iter().any(|l| l == "From (UTC)"));

    let one = browser
        .get(&format!("/console/deliveries/{id}"))
        .await?
        .expect(200)?;
    let text = one.texts("dl.fields")?.concat();
    for expected in ["d-pages", "Verified by", "jira ", "Handled by", "Attempts"] {
        ensure!(text.contains(expected), "{expected} missing: {text}");
    }
    ensure!(
        one.texts("pre#body")?
            .concat()
            .contains("\"jira:issue_updated\""),
        "{}",
        one.body
    );

    let dead = browser.get("/console/dead-letters").await?.expect(200)?;
    ensure!(dead.body.contains("0 dead letter(s)"), "{}", dead.body);

    let plugins = browser.get("/console/plugins").await?.expect(200)?;
    ensure!(
        plugins.texts("tr.plugin[data-name=jira] td.version")? == std::slice::from_ref(&serving)
    );
    ensure!(plugins.attrs("input[type=file]", "name")? == ["module"]);
    let history = api.get("/api/plugins/jira/versions").await?.expect(200)?;
    let sha = history["versions"][0]["sha256"]
        .as_str()
        .context("sha")?
        .to_owned();
    let jira_page = browser.get("/console/plugins/jira").await?.expect(200)?;
    ensure!(jira_page.body.contains(&sha), "{}", jira_page.body);
    ensure!(!jira_page.texts("tr.switch td.kind")?.is_empty());

    let settings = browser
        .get(&format!(
            "/console/integrations/{integration}?org={}",
            scenario.org
        ))
        .await?
        .expect(200)?;
    ensure!(
        settings.attrs("#project_0", "value")? == ["10100"],
        "{}",
        settings.body
    );
    ensure!(settings.attrs("#resolve_0", "value")? == ["10101"]);
    ensure!(settings.attrs("#unresolve_0", "value")? == ["3"]);
    ensure!(settings.attrs("#sync_reverse_assignment", "checked")?.len() == 1);
    ensure!(settings.texts("#identities-heading")? == ["Identity mappings"]);

    let audit = browser.get("/console/audit").await?.expect(200)?;
    ensure!(audit.texts("td.what")? == ["signed in"], "{}", audit.body);
    for page in [
        &overview, &list, &one, &dead, &plugins, &jira_page, &settings, &audit, &form,
    ] {
        let unlabelled = page.unlabelled_controls()?;
        ensure!(
            unlabelled.is_empty(),
            "controls without a label: {unlabelled:?}"
        );
    }
    let css = browser
        .get("/console/static/console.css")
        .await?
        .expect(200)?;
    ensure!(css.body.contains(":focus-visible"), "a visible focus style");
    let htmx = browser
        .get("/console/static/htmx.min.js")
        .await?
        .expect(200)?;
    ensure!(htmx.body.contains("htmx"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_delivery_filter_narrows_the_list() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let group = scenario.linked_group(api, "SEN-5").await?;
    let http = http_client();
    for (n, key) in ["d-filter-1", "d-filter-2"].iter().enumerate() {
        let event = scenario.assignee_event("SEN-5", Some("bob@example.com"), now_ms() + n as i64);
        deliver(&http, &host.base_url(), &event, key).await?;
    }
    api.update_group(group, &json!({"status": "resolved"}))
        .await?
        .expect(200)?;
    wait_queue_idle(api, QUEUE_WAIT).await?;
    let browser = Browser::signed_in(&host).await?;
    let ids = |list: &[Value]| -> BTreeSet<i64> {
        list.iter().filter_map(|j| j["id"].as_i64()).collect()
    };
    let listed = |query: String| {
        let browser = &browser;
        async move {
            browser
                .get(&format!("/console/deliveries?{query}"))
                .await?
                .expect(200)?
                .job_ids()
        }
    };

    let all = listed(String::new()).await?;
    ensure!(all == ids(&jobs(api, "").await?), "unfiltered: {all:?}");
    let webhooks = listed("kind=webhook".into()).await?;
    ensure!(webhooks == ids(&jobs(api, "kind=webhook").await?) && webhooks.len() == 2);
    ensure!(
        webhooks.len() < all.len(),
        "kind narrows: {webhooks:?} of {all:?}"
    );
    let sync = listed("kind=sync_status&state=done".into()).await?;
    ensure!(sync == ids(&jobs(api, "kind=sync_status&state=done").await?) && sync.len() == 1);
    ensure!(listed("state=dead".into()).await?.is_empty());
    let integration = scenario.integration;
    let of_integration = listed(format!("integration={integration}")).await?;
    ensure!(of_integration == ids(&jobs(api, &format!("integration={integration}")).await?));
    ensure!(
        listed(format!("integration={}", integration + 1))
            .await?
            .is_empty()
    );
    ensure!(!listed("provider=jira".into()).await?.is_empty());
    ensure!(listed("provider=vsts".into()).await?.is_empty());
    let of_group: BTreeSet<i64> = jobs(api, "")
        .await?
        .iter()
        .filter(|j| j["group_id"] == group)
        .filter_map(|j| j["id"].as_i64())
        .collect();
    ensure!(!of_group.is_empty() && of_group.len() < all.len());
    ensure!(listed(format!("group={group}")).await? == of_group);
    ensure!(listed("from=2000-01-01T00:00".into()).await? == all);
    ensure!(listed("to=2000-01-01T00:00".into()).await?.is_empty());
    ensure!(listed("from=2999-01-01T00:00".into()).await?.is_empty());
    let first = *webhooks.iter().next().context("a webhook")?;
    ensure!(listed(format!("id={first}")).await? == BTreeSet::from([first]));
    let by_key = listed("id=d-filter-2".into()).await?;
    ensure!(by_key.len() == 1 && webhooks.contains(by_key.iter().next().context("one")?));
    // Filters combine, and the shareable link carries them.
    let page = browser
        .get(&format!(
            "/console/deliveries?kind=webhook&integration={integration}"
        ))
        .await?
        .expect(200)?;
    ensure!(page.job_ids()? == webhooks);
    let share = page.attrs("a.share", "href")?;
    ensure!(
        share
            == [format!(
                "/console/deliveries?kind=webhook&integration={integration}"
            )],
        "{share:?}"
    );
    ensure!(page.attrs("#f-kind option[selected]", "value")? == ["webhook"]);
    // Paging: everything older than the newest.
    let newest = *all.iter().next_back().context("a job")?;
    let older = listed(format!("before={newest}")).await?;
    ensure!(older.len() == all.len() - 1 && !older.contains(&newest));
    // A time that does not parse is refused in words, not ignored.
    let bad = browser
        .get("/console/deliveries?from=yesterday")
        .await?
        .expect(400)?;
    ensure!(bad.body.contains("UTC time"), "{}", bad.body);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_secret_in_a_stored_webhook_is_masked() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    scenario.linked_group(api, "SEN-5").await?;
    let mut event = scenario.assignee_event("SEN-5", Some("bob@example.com"), now_ms());
    event["webhook_secret"] = json!(CANARY);
    event["issue"]["fields"]["customfield"] =
        json!({"api_token": CANARY, "label": "visible-label"});
    deliver(&http_client(), &host.base_url(), &event, "d-canary").await?;
    wait_queue_idle(api, QUEUE_WAIT).await?;
    let id = jobs(api, "kind=webhook").await?[0]["id"]
        .as_i64()
        .context("id")?;
    // The host drops credential headers before storing; a row stored with
    // them (by an older host, say) must still not show them.
    let headers = json!([
        ["content-type", "application/json"],
        ["Authorization", format!("Bearer {CANARY}")],
        ["X-Hub-Signature", format!("sha256={CANARY}")],
        ["x-request-id", "visible-request-id"]
    ]);
    let payload = json!({"plugin": "jira", "method": "POST", "path": "/extensions/jira/issue-updated/",
        "query": "", "headers": headers, "route_params": []});
    let sql = format!(
        "UPDATE jobs SET payload = '{}' WHERE id = {id}",
        payload.to_string().replace('\'', "''")
    );
    ensure!(execute(&host, &sql).await? == 1);

    let browser = Browser::signed_in(&host).await?;
    let page = browser
        .get(&format!("/console/deliveries/{id}"))
        .await?
        .expect(200)?;
    ensure!(
        !page.body.contains("CANARY"),
        "the canary shows: {}",
        page.body
    );
    let values = page.texts("td.header-value")?;
    ensure!(
        values == ["application/json", "••••", "••••", "visible-request-id"],
        "{values:?}"
    );
    let body = page.texts("pre#body")?.concat();
    ensure!(body.contains("\"webhook_secret\": \"••••\""), "{body}");
    ensure!(body.contains("\"api_token\": \"••••\""), "{body}");
    ensure!(
        body.contains("visible-label") && body.contains("\n  \""),
        "pretty-printed: {body}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_right_csrf_token_changes_nothing() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let (scenario, id) = dead_letter(&host, &jira).await?;
    let browser = Browser::signed_in(&host).await?;
    let replay = format!("/console/deliveries/{id}/replay");
    let config_before = host
        .api()
        .get(&format!(
            "/api/organizations/{}/integrations/{}",
            scenario.org, scenario.integration
        ))
        .await?
        .expect(200)?;

    browser.post(&replay, &[]).await?.expect(403)?;
    browser
        .post(&replay, &[("csrf", "forged")])
        .await?
        .expect(403)?;
    browser
        .post("/console/dead-letters/replay", &[])
        .await?
        .expect(403)?;
    let config = format!(
        "/console/integrations/{}/config?org={}",
        scenario.integration, scenario.org
    );
    browser
        .post(&config, &[("project_0", "")])
        .await?
        .expect(403)?;
    ensure!(
        job(&host, id).await?["state"] == "dead",
        "the job stays dead"
    );
    let config_after = host
        .api()
        .get(&format!(
            "/api/organizations/{}/integrations/{}",
            scenario.org, scenario.integration
        ))
        .await?
        .expect(200)?;
    ensure!(
        config_before["config"] == config_after["config"],
        "{config_after}"
    );
    let audit = browser.get("/console/audit").await?.expect(200)?;
    ensure!(audit.texts("td.what")? == ["signed in"], "{}", audit.body);

    // With the session's token the same form replays it.
    jira.recorder().clear_faults();
    let csrf = browser.csrf().await?;
    let done = browser
        .post(&replay, &[("csrf", &csrf)])
        .await?
        .expect(303)?;
    ensure!(done.location == Some(format!("/console/deliveries/{id}")));
    wait_queue_idle(host.api(), QUEUE_WAIT).await?;
    ensure!(job(&host, id).await?["state"] == "done");
    let audit = browser.get("/console/audit").await?.expect(200)?;
    ensure!(audit.texts("td.what")?.first().map(String::as_str) == Some("replayed a job"));
    ensure!(audit.texts("td.target")?.first() == Some(&format!("job {id}")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_sent_to_sign_in_and_changes_nothing() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let (_, id) = dead_letter(&host, &jira).await?;
    let browser = Browser::signed_in(&host).await?;
    let csrf = browser.csrf().await?;
    jira.recorder().clear_faults();

    ensure!(execute(&host, "UPDATE console_sessions SET expires_at = 1").await? == 1);
    let page = browser.get("/console").await?.expect(303)?;
    ensure!(page.location.as_deref() == Some("/console/login"));
    // A list refreshing through htmx is told to load the sign-in page.
    let request = browser.with_cookie(
        browser
            .http
            .get(format!("{}/console/deliveries", browser.base))
            .header("hx-request", "true"),
    );
    let response = request.send().await?;
    ensure!(response.status() == 401);
    ensure!(
        response
            .headers()
            .get("hx-redirect")
            .and_then(|v| v.to_str().ok())
            == Some("/console/login")
    );
    let refused = browser
        .post(
            &format!("/console/deliveries/{id}/replay"),
            &[("csrf", &csrf)],
        )
        .await?
        .expect(303)?;
    ensure!(refused.location.as_deref() == Some("/console/login"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(
        job(&host, id).await?["state"] == "dead",
        "the job stays dead"
    );
    let audit: Vec<String> = {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(host.database().url()).await?;
        sqlx::query_scalar("SELECT what FROM console_audit ORDER BY id")
            .fetch_all(&mut conn)
            .await?
    };
    ensure!(audit == ["signed in"], "{audit:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_replayed_through_the_console_reach_the_tracker() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let (scenario, id) = dead_letter(&host, &jira).await?;
    let browser = Browser::signed_in(&host).await?;

    let list = browser.get("/console/dead-letters").await?.expect(200)?;
    ensure!(list.texts("tr.group td.count")? == ["1"], "{}", list.body);
    ensure!(
        list.texts("tr.group td.error-text")?[0].contains("500"),
        "{}",
        list.body
    );
    let overview = browser.get("/console").await?.expect(200)?;
    let row = format!("tr.integration[data-id=\"{}\"]", scenario.integration);
    ensure!(
        overview.texts(&format!("{row} td.dead"))? == ["1"],
        "{}",
        overview.body
    );
    ensure!(overview.texts(&format!("{row} td.failures"))? == ["1"]);

    let confirm_url = list.attrs("a.replay-matching", "href")?;
    let confirm = browser.get(&confirm_url[0]).await?.expect(200)?;
    ensure!(
        confirm.texts("p.confirm strong.count")? == ["1"],
        "{}",
        confirm.body
    );
    // Nothing happened yet.
    ensure!(job(&host, id).await?["state"] == "dead");

    jira.recorder().clear_faults();
    let fields: Vec<(String, String)> = {
        let html = confirm.html();
        let selector = Selector::parse("form[action='/console/dead-letters/replay'] input")
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        html.select(&selector)
            .filter_map(|i| {
                Some((
                    i.value().attr("name")?.to_owned(),
                    i.value().attr("value")?.to_owned(),
                ))
            })
            .collect()
    };
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    browser
        .post("/console/dead-letters/replay", &form)
        .await?
        .expect(303)?;
    let transition = jira
        .recorder()
        .wait_for_call("POST", SEN5_TRANSITIONS)
        .await?;
    ensure!(
        matches!(transition.status, Some(200 | 204)),
        "{transition:?}"
    );
    wait_queue_idle(host.api(), QUEUE_WAIT).await?;
    ensure!(job(&host, id).await?["state"] == "done");
    ensure!(jira.issue("SEN-5").context("SEN-5")?.status_id == "10101");

    let audit = browser.get("/console/audit").await?.expect(200)?;
    ensure!(audit.texts("td.what")?.first().map(String::as_str) == Some("replayed dead letters"));
    let target = audit.texts("td.target")?;
    ensure!(target[0].starts_with("1 dead letter(s)"), "{target:?}");
    let after = browser.get("/console/dead-letters").await?.expect(200)?;
    ensure!(after.texts("tr.group")?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_settings_are_saved_through_the_api_validation() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let browser = Browser::signed_in(&host).await?;
    let csrf = browser.csrf().await?;
    let path = format!(
        "/console/integrations/{}/config?org={}",
        scenario.integration, scenario.org
    );
    let api_path = format!(
        "/api/organizations/{}/integrations/{}",
        scenario.org, scenario.integration
    );
    let before = api.get(&api_path).await?.expect(200)?["config"].clone();

    // A mapping without its unresolve status: the API's refusal, nothing saved.
    let refused = browser
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("sync_status_reverse", "on"),
                ("project_0", "10100"),
                ("resolve_0", "10101"),
                ("unresolve_0", ""),
            ],
        )
        .await?
        .expect(400)?;
    ensure!(
        refused.texts("span.refusal")? == ["Resolve and unresolve status are required."],
        "{}",
        refused.body
    );
    ensure!(api.get(&api_path).await?.expect(200)?["config"] == before);

    // Inbound assignee off, a second mapping.
    browser
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("sync_status_reverse", "on"),
                ("sync_forward_assignment", "on"),
                ("project_0", "10100"),
                ("resolve_0", "10101"),
                ("unresolve_0", "3"),
                ("project_1", "10200"),
                ("resolve_1", "31"),
                ("unresolve_1", "11"),
            ],
        )
        .await?
        .expect(303)?;
    let config = api.get(&api_path).await?.expect(200)?["config"].clone();
    ensure!(config["sync_reverse_assignment"] == false, "{config}");
    ensure!(config["sync_forward_assignment"] == true, "{config}");
    ensure!(
        config["sync_status_forward"]["10200"] == json!({"on_resolve": "31", "on_unresolve": "11"}),
        "{config}"
    );
    let page = browser
        .get(&format!(
            "/console/integrations/{}?org={}",
            scenario.integration, scenario.org
        ))
        .await?
        .expect(200)?;
    ensure!(
        page.attrs("#sync_reverse_assignment", "checked")?
            .is_empty()
    );
    ensure!(page.attrs("#project_1", "value")? == ["10200"]);
    let audit = browser.get("/console/audit").await?.expect(200)?;
    ensure!(audit.texts("td.what")?.first().map(String::as_str) == Some("saved sync settings"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_plugin_upload_is_shown_in_the_api_words() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let api = host.api();
    let serving = api.serving_version("jira").await?;
    let module = b"\0asm-but-not-really".to_vec();
    let api_refusal = api
        .post_bytes("/api/plugins", module.clone())
        .await?
        .expect(400)?;
    let words = api_refusal["error"]
        .as_str()
        .context("the API's error")?
        .to_owned();

    let browser = Browser::signed_in(&host).await?;
    let csrf = browser.csrf().await?;
    let page = browser.upload(&csrf, &module).await?.expect(400)?;
    // The same words, but for who the module is recorded as uploaded by.
    let refusal = page.texts("span.refusal")?.concat();
    let reason = |text: &str| text.split_once(": ").map(|(_, r)| r.to_owned());
    ensure!(
        words.contains("uploaded by e2e-operator: ")
            && refusal.contains("uploaded by console session:")
            && reason(&refusal) == reason(&words)
            && reason(&words).is_some(),
        "{words} / {}",
        page.body
    );
    ensure!(api.serving_version("jira").await? == serving);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_version_uploaded_through_the_console_serves_and_rolls_back() -> anyhow::Result<()>
{
    let next =
        tokio::task::spawn_blocking(|| test_plugin("trackbridge-test-plugin-jira-next")).await?;
    let module = std::fs::read(&next)?;
    let host = TestHost::start().await?;
    let api = host.api();
    let first = api.serving_version("jira").await?;
    let browser = Browser::signed_in(&host).await?;
    let csrf = browser.csrf().await?;

    let installed = browser.upload(&csrf, &module).await?.expect(303)?;
    let location = installed.location.clone().context("a redirect")?;
    ensure!(
        location.starts_with("/console/plugins?installed="),
        "{location}"
    );
    let now = api.serving_version("jira").await?;
    ensure!(now != first, "still {first}");
    let list = browser.get(&location).await?.expect(200)?;
    ensure!(list.texts("tr.plugin[data-name=jira] td.version")? == std::slice::from_ref(&now));
    ensure!(list.texts("[role=status]")?.concat().contains(&now));
    let page = browser.get("/console/plugins/jira").await?.expect(200)?;
    ensure!(page.texts("tr.switch td.kind")?.first().map(String::as_str) == Some("install"));
    ensure!(page.texts("tr.version")?.len() == 2, "{}", page.body);

    // The confirmation names both versions; nothing switches until it is sent.
    let confirm = browser
        .get("/console/plugins/jira/rollback")
        .await?
        .expect(200)?;
    let text = confirm.texts("p.confirm")?.concat();
    ensure!(text.contains(&now) && text.contains(&first), "{text}");
    ensure!(api.serving_version("jira").await? == now);
    browser
        .post("/console/plugins/jira/rollback", &[("to", "")])
        .await?
        .expect(403)?;
    ensure!(api.serving_version("jira").await? == now);
    browser
        .post(
            "/console/plugins/jira/rollback",
            &[("csrf", &csrf), ("to", "")],
        )
        .await?
        .expect(303)?;
    ensure!(api.serving_version("jira").await? == first);
    let page = browser.get("/console/plugins/jira").await?.expect(200)?;
    ensure!(page.texts("tr.switch td.kind")?.first().map(String::as_str) == Some("rollback"));

    let audit = browser.get("/console/audit").await?.expect(200)?;
    let what = audit.texts("td.what")?;
    ensure!(
        what == [
            "rolled a plugin back",
            "installed a plugin version",
            "signed in"
        ],
        "{what:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_page_shows_every_attempt_with_its_outcome() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let group = scenario.linked_group(api, "SEN-5").await?;
    wait_queue_idle(api, QUEUE_WAIT).await?;
    jira.recorder().clear();
    // Jira fails the first two attempts, then takes the third.
    jira.recorder().fail_next(2, 500);
    api.update_group(group, &json!({"status": "resolved"}))
        .await?
        .expect(200)?;
    let done = wait_for_jobs(&host, "kind=sync_status&state=done", 1).await?;
    let id = done[0]["id"].as_i64().context("job id")?;
    ensure!(done[0]["attempts"] == 3, "{}", done[0]);
    ensure!(jira.issue("SEN-5").context("SEN-5")?.status_id == "10101");

    let browser = Browser::signed_in(&host).await?;
    let page = browser
        .get(&format!("/console/deliveries/{id}"))
        .await?
        .expect(200)?;
    let outcomes = page.attrs("table.attempts tr.attempt", "data-outcome")?;
    ensure!(outcomes == ["retry", "retry", "done"], "{}", page.body);
    ensure!(page.texts("tr.attempt td.number")? == ["1", "2", "3"]);
    let words = page.texts("tr.attempt td.outcome")?;
    ensure!(
        words == ["failed; retried", "failed; retried", "succeeded"],
        "the outcome in words, not by colour alone: {words:?}"
    );
    let errors = page.texts("tr.attempt td.error-text")?;
    ensure!(
        errors[..2].iter().all(|e| e.contains("500")) && errors[2] == "—",
        "{errors:?}"
    );
    // The errors are the ones the job kept as its last error.
    let last_error = job(&host, id).await?["last_error"]
        .as_str()
        .context("last error")?
        .to_owned();
    ensure!(errors[1] == last_error, "{errors:?} / {last_error}");
    let next = page.texts("tr.attempt td.next-retry")?;
    ensure!(
        next[..2].iter().all(|t| t != "—") && next[2] == "—",
        "{next:?}"
    );
    // Done, the job's error is history, not its state: the page names it so,
    // and the list of deliveries shows none.
    let names = page.texts("dl.fields dt")?;
    ensure!(
        names.iter().any(|n| n == "Error before it succeeded")
            && !names.iter().any(|n| n == "Last error"),
        "{names:?}"
    );
    let list = browser
        .get(&format!("/console/deliveries?id={id}"))
        .await?
        .expect(200)?;
    ensure!(list.texts("tr.job td.error-text")? == [""], "{}", list.body);

    // A delivery that ran before attempts were kept still renders.
    ensure!(
        execute(
            &host,
            &format!("DELETE FROM job_attempts WHERE job_id = {id}")
        )
        .await?
            == 3
    );
    let old = browser
        .get(&format!("/console/deliveries/{id}"))
        .await?
        .expect(200)?;
    ensure!(old.texts("tr.attempt")?.is_empty());
    ensure!(
        old.texts("#attempts-heading + p.empty")?
            .concat()
            .contains("last ran before the host kept each attempt"),
        "{}",
        old.body
    );
    ensure!(old.texts("dl.fields")?.concat().contains(&last_error));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_pruned_with_their_delivery() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start_with(|s| s.jobs.retention = Duration::from_secs(3)).await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    scenario.linked_group(api, "SEN-5").await?;
    let event = scenario.assignee_event("SEN-5", Some("bob@example.com"), now_ms());
    deliver(&http_client(), &host.base_url(), &event, "d-prune").await?;
    let done = wait_for_jobs(&host, "kind=webhook&state=done", 1).await?;
    let id = done[0]["id"].as_i64().context("job id")?;
    let attempts = format!("SELECT COUNT(*) FROM job_attempts WHERE job_id = {id}");
    ensure!(count(&host, &attempts).await? == 1);
    let deadline = tokio::time::Instant::now() + QUEUE_WAIT;
    while count(&host, &format!("SELECT COUNT(*) FROM jobs WHERE id = {id}")).await? == 1 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "job {id} not pruned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(count(&host, &attempts).await? == 0, "its attempts stay");
    Ok(())
}

/// Read `response` (an event stream) until `needle` shows or `within` passes;
/// returns what was read and whether the stream ended.
async fn read_stream(
    response: &mut reqwest::Response,
    needle: &str,
    within: Duration,
) -> anyhow::Result<(String, bool)> {
    let deadline = tokio::time::Instant::now() + within;
    let mut read = String::new();
    while !read.contains(needle) {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Err(_) => break,
            Ok(chunk) => match chunk? {
                Some(bytes) => read.push_str(&String::from_utf8_lossy(&bytes)),
                None => return Ok((read, true)),
            },
        }
    }
    Ok((read, false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_needs_a_session_and_tells_of_a_new_delivery() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    scenario.linked_group(api, "SEN-5").await?;
    wait_queue_idle(api, QUEUE_WAIT).await?;

    // Without a session: sent to sign in (htmx is told so), no stream.
    let anonymous = Browser::new(&host)?;
    let refused = anonymous.get("/console/live").await?.expect(303)?;
    ensure!(refused.location.as_deref() == Some("/console/login"));
    ensure!(refused.body.is_empty(), "{}", refused.body);
    let forged = anonymous
        .http
        .get(format!("{}/console/live", host.base_url()))
        .header("cookie", "trackbridge_console=not-a-session")
        .header("hx-request", "true")
        .send()
        .await?;
    ensure!(forged.status() == 401);
    ensure!(
        !forged
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .contains("event-stream")
    );

    let browser = Browser::signed_in(&host).await?;
    // A client of its own: the stream outlives the page client's timeout.
    let streaming = reqwest::Client::builder().no_proxy().build()?;
    let mut response = browser
        .with_cookie(streaming.get(format!("{}/console/live", host.base_url())))
        .send()
        .await?;
    ensure!(response.status() == 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    ensure!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    // Nothing changes: nothing is said.
    let (quiet, ended) = read_stream(&mut response, "event:", Duration::from_millis(2500)).await?;
    ensure!(!ended && !quiet.contains("event:"), "{quiet}");

    let event = scenario.assignee_event("SEN-5", Some("bob@example.com"), now_ms());
    deliver(&http_client(), &host.base_url(), &event, "d-live").await?;
    let (told, _) = read_stream(&mut response, "\n\n", Duration::from_secs(10)).await?;
    ensure!(told.contains("event: change"), "no change event: {told:?}");

    // Signed out, the stream ends.
    let csrf = browser.csrf().await?;
    browser
        .post("/console/logout", &[("csrf", &csrf)])
        .await?
        .expect(303)?;
    let (_, ended) = read_stream(&mut response, "\u{0}", Duration::from_secs(10)).await?;
    ensure!(ended, "the stream outlived its session");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lists_offer_a_pause_control_and_name_what_they_refresh() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let browser = Browser::signed_in(&host).await?;
    for (path, region) in [
        ("/console", "overview"),
        ("/console/deliveries?kind=webhook", "rows"),
        ("/console/dead-letters", "dead-list"),
    ] {
        let page = browser.get(path).await?.expect(200)?;
        let button = "button#live-toggle[type=button][aria-pressed=false]";
        ensure!(
            page.texts(button)? == ["Pause live updates"],
            "{path}: {}",
            page.body
        );
        ensure!(page.attrs(button, "aria-controls")? == [region]);
        ensure!(page.attrs(&format!("#{region}"), "data-live")? == [path]);
        ensure!(page.attrs("#live-status", "role")? == ["status"]);
        ensure!(
            page.body.contains("/console/static/live.js"),
            "{path} loads the live script"
        );
        ensure!(!page.body.contains("every 10s"), "{path} still polls");
    }
    let script = browser.get("/console/static/live.js").await?.expect(200)?;
    for part in [
        "EventSource(\"/console/live\")",
        "\"change\"",
        "live-toggle",
    ] {
        ensure!(script.body.contains(part), "{part} missing from live.js");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_mappings_are_added_listed_and_deleted_through_the_api_checks()
-> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let (org, integration) = (scenario.org, scenario.integration);
    let browser = Browser::signed_in(&host).await?;
    let csrf = browser.csrf().await?;
    let page_path = format!("/console/integrations/{integration}?org={org}");
    let add = format!("/console/integrations/{integration}/identities?org={org}");
    let api_list = format!("/api/organizations/{org}/identities?integration_id={integration}");
    let bob = scenario.bob.to_string();

    let empty = browser.get(&page_path).await?.expect(200)?;
    ensure!(empty.texts("tr.identity")?.is_empty());
    ensure!(
        empty.unlabelled_controls()?.is_empty(),
        "{:?}",
        empty.unlabelled_controls()?
    );

    // Without the session's CSRF token: refused, nothing stored.
    browser
        .post(&add, &[("external_id", "583291"), ("user", &bob)])
        .await?
        .expect(403)?;
    browser
        .post(
            &add,
            &[
                ("csrf", "forged"),
                ("external_id", "583291"),
                ("user", &bob),
            ],
        )
        .await?
        .expect(403)?;
    ensure!(api.get(&api_list).await?.expect(200)? == json!([]));

    // The API's checks, its refusals in its words: a blank id, someone who is
    // not a member of the organization.
    let blank = browser
        .post(
            &add,
            &[("csrf", &csrf), ("external_id", "  "), ("user", &bob)],
        )
        .await?
        .expect(400)?;
    ensure!(
        blank.texts("#identities span.refusal")?
            == ["external_id is required: the tracker's stable id of its user"],
        "{}",
        blank.body
    );
    let outsider =
        trackbridge_e2e::api::id_of(&api.create_user("eve", &[("eve@example.com", true)]).await?)?;
    let api_refusal = api
        .post(
            &format!("/api/organizations/{org}/identities"),
            &json!({"integration_id": integration, "external_id": "777", "user_id": outsider}),
        )
        .await?
        .expect(400)?;
    let not_member = browser
        .post(
            &add,
            &[
                ("csrf", &csrf),
                ("external_id", "777"),
                ("login", "eve-at-jira"),
                ("user", &outsider.to_string()),
            ],
        )
        .await?
        .expect(400)?;
    ensure!(
        not_member.texts("#identities span.refusal")?
            == [api_refusal["error"].as_str().context("the API's words")?],
        "{}",
        not_member.body
    );
    // What was typed is kept for correcting.
    ensure!(not_member.attrs("#identity-login", "value")? == ["eve-at-jira"]);
    ensure!(api.get(&api_list).await?.expect(200)? == json!([]));

    let added = browser
        .post(
            &add,
            &[
                ("csrf", &csrf),
                ("external_id", " 583291 "),
                ("login", "octobob"),
                ("user", &bob),
            ],
        )
        .await?
        .expect(303)?;
    let location = added.location.context("a redirect")?;
    let stored = api.get(&api_list).await?.expect(200)?;
    ensure!(
        stored.as_array().map(Vec::len) == Some(1)
            && stored[0]["external_id"] == "583291"
            && stored[0]["login"] == "octobob"
            && stored[0]["user_id"] == scenario.bob,
        "{stored}"
    );
    let mapping = stored[0]["id"].as_i64().context("mapping id")?;
    let listed = browser.get(&location).await?.expect(200)?;
    ensure!(listed.texts("[role=status]")?.concat().contains("added"));
    ensure!(listed.texts("tr.identity td.external-id")? == ["583291"]);
    ensure!(listed.texts("tr.identity td.login")? == ["octobob"]);
    ensure!(listed.texts("tr.identity td.user")? == std::slice::from_ref(&bob));
    // The same tracker user twice: the API's conflict.
    let twice = browser
        .post(
            &add,
            &[("csrf", &csrf), ("external_id", "583291"), ("user", &bob)],
        )
        .await?
        .expect(409)?;
    ensure!(!twice.texts("#identities span.refusal")?.is_empty());

    let delete =
        format!("/console/integrations/{integration}/identities/{mapping}/delete?org={org}");
    ensure!(
        listed.attrs("tr.identity form", "action")? == [delete.clone()],
        "{}",
        listed.body
    );
    browser.post(&delete, &[]).await?.expect(403)?;
    browser
        .post(&delete, &[("csrf", "forged")])
        .await?
        .expect(403)?;
    ensure!(
        api.get(&api_list)
            .await?
            .expect(200)?
            .as_array()
            .map(Vec::len)
            == Some(1)
    );
    // Not a mapping of this integration: not found, nothing deleted.
    browser
        .post(
            &format!(
                "/console/integrations/{integration}/identities/{}/delete?org={org}",
                mapping + 1000
            ),
            &[("csrf", &csrf)],
        )
        .await?
        .expect(404)?;
    browser
        .post(&delete, &[("csrf", &csrf)])
        .await?
        .expect(303)?;
    ensure!(api.get(&api_list).await?.expect(200)? == json!([]));
    let after = browser.get(&page_path).await?.expect(200)?;
    ensure!(after.texts("tr.identity")?.is_empty());

    let audit = browser.get("/console/audit").await?.expect(200)?;
    let what = audit.texts("td.what")?;
    ensure!(
        what == [
            "deleted an identity mapping",
            "added an identity mapping",
            "signed in"
        ],
        "{what:?}"
    );
    let target = audit.texts("td.target")?;
    ensure!(
        target[0].contains("tracker user 583291") && target[1].contains(&format!("user {bob}")),
        "{target:?}"
    );
    Ok(())
}
