//! Helpers of the Harbor API tests: a request, its response, and the check of the response
//! against Harbor's contract (`contract`). A test file that uses them declares `mod common;`,
//! `mod contract;` and `mod harbor;`.
#![allow(dead_code)]

use crate::common::TestApp;
use crate::contract;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Basic credentials of a request, or none (anonymous).
pub type Who = Option<(&'static str, &'static str)>;
/// Credentials made at run time (a robot's secret, a token).
pub type Creds<'a> = Option<(&'a str, &'a str)>;

/// A response: status, headers, the JSON body (Null when empty or not JSON) and the text.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }
    /// `X-Total-Count`.
    pub fn total(&self) -> i64 {
        self.header("x-total-count").expect("X-Total-Count").parse().unwrap()
    }
    /// The body as a list.
    pub fn items(&self) -> &Vec<Value> {
        self.body.as_array().unwrap_or_else(|| panic!("not a list: {}", self.text))
    }
    /// The first error's message.
    pub fn message(&self) -> String {
        self.body["errors"][0]["message"].as_str().unwrap_or_default().to_string()
    }
    /// The first error's code.
    pub fn code(&self) -> String {
        self.body["errors"][0]["code"].as_str().unwrap_or_default().to_string()
    }
}

/// Sends `method path` (a path under the server's root) as `who`, with a JSON body if any.
pub async fn call(t: &TestApp, method: &str, path: &str, who: Creds<'_>, body: Option<Value>) -> Resp {
    call_with(t, method, path, who, body, &[]).await
}

/// `call` with extra request headers.
pub async fn call_with(t: &TestApp, method: &str, path: &str, who: Creds<'_>, body: Option<Value>, headers: &[(&str, &str)]) -> Resp {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = t.http.request(m, format!("{}{path}", t.url));
    if let Some((u, p)) = who {
        r = r.basic_auth(u, Some(p));
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let json = headers.get("content-type").is_some_and(|v| v.to_str().unwrap_or_default().contains("json"));
    let text = resp.text().await.unwrap();
    // A JSON body must parse; any other body (the metrics exposition) is kept as text only.
    let body = if text.is_empty() || !json {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    };
    Resp { status, headers, body, text }
}

/// Checks a response against the contract: a success, or a status the operation declares
/// with a schema, must match that schema; every error (but a HEAD's, which has no body)
/// must carry Harbor's error body with a message.
#[track_caller]
pub fn check(method: &str, template: &str, r: &Resp) {
    let op = contract::operation(method, template);
    let declared = op.response(r.status).is_some_and(|x| x.schema.is_some());
    if (r.status < 300 || declared)
        && let Err(e) = contract::validate_response(method, template, r.status, &r.body)
    {
        panic!("{method} {template} -> {}: {e:?}\n{}", r.status, r.text);
    }
    if r.status >= 400 && method != "HEAD" {
        if let Err(e) = contract::validate("Errors", &r.body) {
            panic!("{method} {template} -> {}: {e:?}\n{}", r.status, r.text);
        }
        assert!(!r.message().is_empty(), "{method} {template} -> {}: no error message: {}", r.status, r.text);
    }
}

/// Calls `/api/v2.0{path}` and checks the answer against the contract (`template` is the
/// operation's path in the contract).
pub async fn api(t: &TestApp, method: &str, template: &str, path: &str, who: Creds<'_>, body: Option<Value>) -> Resp {
    let r = call(t, method, &format!("/api/v2.0{path}"), who, body).await;
    check(method, template, &r);
    r
}
