//! The server's edge against hostile clients, on SQLite and PostgreSQL: connections that
//! send their header slowly, send nothing, stall a body or stop reading a response are
//! closed while real pushes go on; connection caps per address and in all; forwarded headers
//! honoured only from trusted proxies; names and descriptions that refuse control and
//! bidirectional characters; page numbers whose offset would overflow.

mod common;
mod contract;
mod harbor;

use berth::config::Cidr;
use common::{ADMIN_PASSWORD, Db, TestApp};
use harbor::{Creds, call, call_with};
use reqwest::StatusCode;
use serde_json::json;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

const ADMIN: Creds<'static> = Some(("admin", ADMIN_PASSWORD));

/// A connection to the test server from the local address `from` (any 127.0.0.0/8 address).
async fn connect_from(t: &TestApp, from: &str) -> TcpStream {
    let addr: SocketAddr = t.url.trim_start_matches("http://").parse().unwrap();
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{from}:0").parse().unwrap()).unwrap();
    s.connect(addr).await.unwrap()
}

/// Reads until the server closes the connection: how long that took and what came. Fails
/// when it is still open after `limit`.
async fn read_until_closed(s: &mut (impl tokio::io::AsyncRead + Unpin), limit: Duration) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout_at(start + limit, s.read(&mut buf)).await {
            Err(_) => panic!("the connection is still open after {limit:?} ({} bytes read)", got.len()),
            Ok(Ok(0) | Err(_)) => return (start.elapsed(), got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `GET /v2/` on `s` and reads the response's status line and headers.
async fn get_v2(s: &mut TcpStream) -> String {
    s.write_all(b"GET /v2/ HTTP/1.1\r\nhost: berth\r\ncontent-length: 0\r\n\r\n").await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte)).await.expect("a response").unwrap();
        assert_eq!(n, 1, "connection closed before a response: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len: usize =
        head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())).unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    head
}

/// Header, idle, body and send timeouts close connections that hold the server without
/// progress, each after its own setting; a real push goes on meanwhile.
async fn slow_connections_are_closed(db: Db) {
    let t = TestApp::start_with(db, |c| {
        c.connections.header_timeout = Duration::from_secs(1);
        c.connections.idle_timeout = Duration::from_secs(3);
        c.connections.body_timeout = Duration::from_secs(1);
    })
    .await;
    let tok = t.admin_token("library/app").await;

    // Nothing sent: closed after the header timeout.
    let mut silent = connect_from(&t, "127.0.0.1").await;
    // A header sent a byte every 200 ms: closed after the header timeout, unanswered.
    let mut slow = connect_from(&t, "127.0.0.1").await;
    slow.write_all(b"GET /v2/ HTTP/1.1\r\nhost: berth\r\nx-slow: ").await.unwrap();
    let (mut slow_read, mut slow_write) = slow.into_split();
    let dripping = tokio::spawn(async move {
        while slow_write.write_all(b"a").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // A body declared and stalled: the request fails, the connection closes.
    let r = t.http.post(format!("{}/v2/library/app/blobs/uploads/", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let mut stalled = connect_from(&t, "127.0.0.1").await;
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nhost: berth\r\nauthorization: Bearer {tok}\r\ncontent-type: application/octet-stream\r\ncontent-length: 1000000\r\n\r\n"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&[7u8; 1000]).await.unwrap();

    // Meanwhile a real push, at its own pace.
    let (digest, _) = t.push_image(&tok, "library/app", "v1", &[&common::random_bytes(300_000)]).await;

    let (took, got) = read_until_closed(&mut silent, Duration::from_secs(6)).await;
    assert!(got.is_empty() && took >= Duration::from_millis(500), "closed after {took:?} with {got:?}");
    let (took, got) = read_until_closed(&mut slow_read, Duration::from_secs(6)).await;
    assert!(got.is_empty(), "a header that never ends gets no answer: {}", String::from_utf8_lossy(&got));
    assert!(took < Duration::from_secs(5), "{took:?}");
    dripping.await.unwrap();
    let (took, _) = read_until_closed(&mut stalled, Duration::from_secs(6)).await;
    assert!(took < Duration::from_secs(5), "{took:?}");

    // A kept-alive connection may wait longer than the header timeout between requests,
    // and is closed once it has waited the idle timeout.
    let mut kept = connect_from(&t, "127.0.0.1").await;
    assert!(get_v2(&mut kept).await.starts_with("HTTP/1.1 401"));
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert!(get_v2(&mut kept).await.starts_with("HTTP/1.1 401"), "still open within the idle timeout");
    let (took, got) = read_until_closed(&mut kept, Duration::from_secs(8)).await;
    assert!(got.is_empty() && took >= Duration::from_millis(2500), "idle close after {took:?}");

    // A client that stops reading a large blob is cut off after the body timeout.
    let big = common::random_bytes(48 << 20);
    let blob = t.push_blob(&tok, "library/app", &big).await;
    let mut reader = connect_from(&t, "127.0.0.1").await;
    let req = format!("GET /v2/library/app/blobs/{blob} HTTP/1.1\r\nhost: berth\r\nauthorization: Bearer {tok}\r\n\r\n");
    reader.write_all(req.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, got) = read_until_closed(&mut reader, Duration::from_secs(10)).await;
    assert!(got.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&got[..got.len().min(64)]));
    assert!(got.len() < big.len(), "the whole blob arrived although the client read nothing for 4 s");

    // The server still serves: the pushed image pulls whole.
    let r = t.get(Some(&tok), &format!("/v2/library/app/manifests/{digest}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = t.get(Some(&tok), &format!("/v2/library/app/blobs/{blob}")).await;
    assert_eq!(r.bytes().await.unwrap().len(), big.len());
    t.shutdown().await;
}

/// Connections beyond the cap per client address, or beyond the total cap, are answered 503
/// and closed at once; when held ones close, new ones are served again.
async fn connection_caps(db: Db) {
    let t = TestApp::start_with(db, |c| {
        c.connections.max_connections_per_ip = 3;
        c.connections.max_connections = 5;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from(&t, "127.0.0.1").await;
        assert!(get_v2(&mut s).await.starts_with("HTTP/1.1 401"));
        held.push(s);
    }
    let mut over = connect_from(&t, "127.0.0.1").await;
    let (took, got) = read_until_closed(&mut over, Duration::from_secs(2)).await;
    assert!(got.starts_with(b"HTTP/1.1 503"), "{took:?}: {}", String::from_utf8_lossy(&got));
    // Another address has its own share, up to the total.
    for _ in 0..2 {
        let mut s = connect_from(&t, "127.0.0.2").await;
        assert!(get_v2(&mut s).await.starts_with("HTTP/1.1 401"));
        held.push(s);
    }
    let mut over = connect_from(&t, "127.0.0.3").await;
    let (_, got) = read_until_closed(&mut over, Duration::from_secs(2)).await;
    assert!(got.starts_with(b"HTTP/1.1 503"), "total cap: {}", String::from_utf8_lossy(&got));
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = connect_from(&t, "127.0.0.1").await;
    assert!(get_v2(&mut again).await.starts_with("HTTP/1.1 401"), "served once the held connections closed");
    t.shutdown().await;
}

/// The client address recorded for the audit record of `resource`.
async fn audit_ip(t: &TestApp, resource: &str) -> String {
    let url = t.app.config.database.clone();
    let text = "SELECT client_ip FROM audit_log WHERE resource = $1 ORDER BY id DESC LIMIT 1";
    let (ip,): (String,) = if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let row = sqlx::query_as(text).bind(resource).fetch_one(&pool).await.unwrap();
        pool.close().await;
        row
    } else {
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap().read_only(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let row = sqlx::query_as(text).bind(resource).fetch_one(&pool).await.unwrap();
        pool.close().await;
        row
    };
    ip
}

async fn challenge(http: &reqwest::Client, t: &TestApp, headers: &[(&str, &str)]) -> String {
    let mut r = http.get(format!("{}/v2/", t.url));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    r.headers()["www-authenticate"].to_str().unwrap().to_string()
}

async fn create_project(http: &reqwest::Client, t: &TestApp, name: &str, headers: &[(&str, &str)]) {
    let mut r = http.post(format!("{}/api/v2.0/projects", t.url)).basic_auth("admin", Some(ADMIN_PASSWORD));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.json(&json!({"project_name": name})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
}

/// X-Forwarded-Host/-Proto/-For move the realm and set the audit address only when they come
/// from a trusted proxy; from anyone else they are ignored. Even a trusted proxy cannot put a
/// host into the challenge that would break the header.
async fn forwarded_headers_only_from_trusted_proxies(db: Db) {
    let t = TestApp::start_with(db, |c| c.trusted_proxies = vec![Cidr::parse("127.0.0.2").unwrap()]).await;
    let forged = [("x-forwarded-host", "evil.example"), ("x-forwarded-proto", "https"), ("x-forwarded-for", "203.0.113.66")];
    let host = t.url.trim_start_matches("http://");

    // From 127.0.0.1, not a trusted proxy here.
    let direct = reqwest::Client::new();
    let c = challenge(&direct, &t, &forged).await;
    assert!(c.contains(&format!("realm=\"http://{host}/service/token\"")), "{c}");
    create_project(&direct, &t, "direct", &forged).await;
    assert_eq!(audit_ip(&t, "direct").await, "127.0.0.1");

    // From 127.0.0.2, the trusted proxy.
    let proxy = reqwest::Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let c = challenge(&proxy, &t, &forged).await;
    assert!(c.contains("realm=\"https://evil.example/service/token\""), "{c}");
    create_project(&proxy, &t, "proxied", &forged).await;
    assert_eq!(audit_ip(&t, "proxied").await, "203.0.113.66");
    create_project(&proxy, &t, "proxied-plain", &[]).await;
    assert_eq!(audit_ip(&t, "proxied-plain").await, "127.0.0.2");

    // A forwarded host that is not host[:port] is ignored, even from the proxy.
    for bad in ["evil.example\", error=\"x", "a b", "evil.example/path", "evil.example:x", "[::1"] {
        let c = challenge(&proxy, &t, &[("x-forwarded-host", bad)]).await;
        assert!(c.contains(&format!("realm=\"http://{host}/service/token\"")), "{bad}: {c}");
        assert_eq!(c.matches('"').count(), 4, "realm and service, nothing more: {c}");
    }
    t.shutdown().await;
}

/// Names and descriptions refuse control characters and bidirectional controls with 400.
async fn free_text_refuses_control_and_bidi(db: Db) {
    let t = TestApp::start(db).await;
    let bad_texts = ["nul\u{0}here", "line\nbreak", "\u{202e}gpj.exe", "iso\u{2066}late", "esc\u{1b}[2J", "c1\u{85}"];
    for bad in bad_texts {
        for body in [json!({"name": bad, "scope": "g"}), json!({"name": "fine", "description": bad, "scope": "g"})] {
            let r = call(&t, "POST", "/api/v2.0/labels", ADMIN, Some(body.clone())).await;
            assert_eq!(r.status, 400, "{body}: {}", r.text);
            assert!(r.text.contains("control characters"), "{}", r.text);
        }
        let user = json!({"username": "u1", "email": "u1@example.com", "realname": bad, "password": "Good-Passw0rd"});
        let r = call(&t, "POST", "/api/v2.0/users", ADMIN, Some(user)).await;
        assert_eq!(r.status, 400, "realname {bad:?}: {}", r.text);
        let user = json!({"username": format!("u{bad}"), "email": "u2@example.com", "realname": "U", "password": "Good-Passw0rd"});
        let r = call(&t, "POST", "/api/v2.0/users", ADMIN, Some(user)).await;
        assert_eq!(r.status, 400, "username {bad:?}: {}", r.text);
        let robot = json!({"name": "ci", "level": "system", "duration": -1, "description": bad,
            "permissions": [{"kind": "system", "namespace": "/", "access": [{"resource": "catalog", "action": "read"}]}]});
        let r = call(&t, "POST", "/api/v2.0/robots", ADMIN, Some(robot)).await;
        assert_eq!(r.status, 400, "robot description {bad:?}: {}", r.text);
    }
    let user = json!({"username": "u3", "email": "u3@example.com", "realname": "U", "comment": "a\u{202d}b", "password": "Good-Passw0rd"});
    assert_eq!(call(&t, "POST", "/api/v2.0/users", ADMIN, Some(user)).await.status, 400);
    let tok = t.admin_token("library/app").await;
    t.push_image(&tok, "library/app", "v1", &[b"layer"]).await;
    let r = call(&t, "PUT", "/api/v2.0/projects/library/repositories/app", ADMIN, Some(json!({"description": "x\u{202e}y"}))).await;
    assert_eq!(r.status, 400, "{}", r.text);

    // Ordinary text, accents and other scripts included, is kept as sent.
    let r = call(&t, "POST", "/api/v2.0/labels", ADMIN, Some(json!({"name": "qualité-日本", "description": "Prüfung – ok", "scope": "g"})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = call(&t, "PUT", "/api/v2.0/projects/library/repositories/app", ADMIN, Some(json!({"description": "Ünïcödé fine"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    t.shutdown().await;
}

/// A page whose offset does not fit a 64-bit integer is refused with Harbor's 422 body.
async fn paging_offsets_that_overflow(db: Db) {
    let t = TestApp::start(db).await;
    for q in
        ["page=9223372036854775807", "page=922337203685477581&page_size=10", "page=99999999999999999999", "page_size=99999999999999999999"]
    {
        let r = call(&t, "GET", &format!("/api/v2.0/projects?{q}"), ADMIN, None).await;
        assert_eq!(r.status, 422, "{q}: {}", r.text);
        assert_eq!(r.body["errors"][0]["code"], "UNPROCESSABLE_ENTITY", "{q}");
    }
    // The largest page that still has an offset is answered (empty).
    let r = call(&t, "GET", "/api/v2.0/projects?page=922337203685477580&page_size=10", ADMIN, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!([]));
    let r = call_with(&t, "GET", "/api/v2.0/projects?page=1", ADMIN, None, &[]).await;
    assert_eq!(r.status, 200);
    t.shutdown().await;
}

on_both_backends! {
    slow_connections_closed => slow_connections_are_closed;
    caps_per_address_and_total => connection_caps;
    forwarded_headers_trusted_proxies_only => forwarded_headers_only_from_trusted_proxies;
    free_text_control_and_bidi_refused => free_text_refuses_control_and_bidi;
    paging_overflow_422 => paging_offsets_that_overflow;
}
