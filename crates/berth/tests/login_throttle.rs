//! Credential guessing is slowed per client address and per (account, client address),
//! never by locking an account for everyone: the admin logs in from one address while another
//! hammers its name; robot secrets and personal access tokens are throttled the same way, to
//! the per-address rate, and a refused attempt is answered 401 without being checked (no
//! audit row, and the right secret is refused too from that address). Two client addresses
//! are simulated on loopback (127.0.0.1 and 127.0.0.2).

mod common;

use berth::auth::LoginThrottle;
use common::{ADMIN_PASSWORD, Db, TestApp};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

const PW: &str = "Member-Passw0rd";

fn client_from(ip: &str) -> Client {
    Client::builder().local_address(IpAddr::from_str(ip).unwrap()).build().unwrap()
}

/// Basic credentials on the token service, as `client`.
async fn token_status(t: &TestApp, client: &Client, user: &str, secret: &str) -> StatusCode {
    let url = format!("{}/service/token?service=harbor-registry&scope=repository:team/app:pull", t.url);
    client.get(url).basic_auth(user, Some(secret)).send().await.unwrap().status()
}

async fn current_user(t: &TestApp, client: &Client, user: &str, secret: &str) -> StatusCode {
    client.get(format!("{}/api/v2.0/users/current", t.url)).basic_auth(user, Some(secret)).send().await.unwrap().status()
}

async fn v2_basic(t: &TestApp, client: &Client, user: &str, secret: &str) -> StatusCode {
    client.get(format!("{}/v2/", t.url)).basic_auth(user, Some(secret)).send().await.unwrap().status()
}

/// Creates the robot `robot` (as the admin), and the user `dev` with an access token; returns
/// the robot's name and secret and the token.
async fn robot_and_token(t: &TestApp, robot: &Value) -> (String, String, String) {
    let r = t.http.post(format!("{}/api/v2.0/robots", t.url)).basic_auth("admin", Some(ADMIN_PASSWORD)).json(robot).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let (robot_name, robot_secret) = (v["name"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string());
    let hash = berth::auth::hash_password(PW).await.unwrap();
    let audit = berth::meta::Audit {
        operator: "test".into(),
        resource: "setup".into(),
        resource_type: "test",
        operation: "create",
        ..Default::default()
    };
    t.app.meta.create_user("dev", &hash, false, &audit).await.unwrap();
    let r = t
        .http
        .post(format!("{}/api/berth/v1/users/current/tokens", t.url))
        .basic_auth("dev", Some(PW))
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let pat = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    (robot_name, robot_secret, pat)
}

/// Failed-login audit rows whose resource is `LIKE` the pattern.
async fn failed_logins(t: &TestApp, resource: &str) -> usize {
    let url = t.app.config.database.clone();
    let sql = "SELECT operation, success FROM audit_log WHERE resource LIKE $1";
    let rows: Vec<(String, bool)> = if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let rows = sqlx::query_as(sql).bind(resource).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    } else {
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap().read_only(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let rows = sqlx::query_as(sql).bind(resource).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    };
    rows.into_iter().filter(|(op, ok)| op == "login" && !ok).count()
}

/// With the default settings: 200 wrong admin passwords from 127.0.0.1 (as fast as it can
/// send them, while the admin works) do not keep the admin out from 127.0.0.2.
async fn admin_logs_in_while_another_address_hammers(db: Db) {
    let t = TestApp::start(db).await;
    let attacker = client_from("127.0.0.1");
    let admin = client_from("127.0.0.2");
    for _ in 0..5 {
        assert_eq!(current_user(&t, &attacker, "admin", "Wrong-Passw0rd").await, StatusCode::UNAUTHORIZED);
    }
    let url = t.url.clone();
    let hammer = tokio::spawn(async move {
        let mut sent = 0;
        for _ in 0..200 {
            let r = attacker.get(format!("{url}/api/v2.0/users/current")).basic_auth("admin", Some("Wrong-Passw0rd")).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            sent += 1;
        }
        sent
    });
    for _ in 0..5 {
        assert_eq!(current_user(&t, &admin, "admin", ADMIN_PASSWORD).await, StatusCode::OK);
        assert_eq!(token_status(&t, &admin, "admin", ADMIN_PASSWORD).await, StatusCode::OK);
        assert_eq!(v2_basic(&t, &admin, "admin", ADMIN_PASSWORD).await, StatusCode::OK);
    }
    assert_eq!(hammer.await.unwrap(), 200);
    // From the hammering address even the right password is refused for now, unchecked.
    let attacker = client_from("127.0.0.1");
    assert_eq!(current_user(&t, &attacker, "admin", ADMIN_PASSWORD).await, StatusCode::UNAUTHORIZED);
    // Only the checked attempts were recorded: the first five.
    assert_eq!(failed_logins(&t, "admin").await, 5);
    assert_eq!(current_user(&t, &admin, "admin", ADMIN_PASSWORD).await, StatusCode::OK);
    t.shutdown().await;
}

/// Robot secrets and personal access tokens: guessing from one address across many names is
/// held to the address's rate (here 10 at once, then 2 a second), checked attempts are
/// counted in the audit log, and the right secrets still work from another address.
async fn robot_and_token_guessing_is_slowed_per_address(db: Db) {
    let t = TestApp::start(db).await;
    let (burst, per_second) = (10u32, 2.0);
    t.app.auth.set_login_throttle(LoginThrottle {
        address_burst: burst,
        address_refill: Duration::from_millis(500),
        ..LoginThrottle::default()
    });
    let admin = ("admin", ADMIN_PASSWORD);
    let r = t
        .http
        .post(format!("{}/api/v2.0/projects", t.url))
        .basic_auth(admin.0, Some(admin.1))
        .json(&json!({"project_name": "team", "metadata": {"public": "false"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let robot = json!({"name": "ci", "level": "project", "duration": -1, "permissions": [{"kind": "project", "namespace": "team",
        "access": [{"resource": "repository", "action": "pull"}]}]});
    let (robot_name, robot_secret, pat) = robot_and_token(&t, &robot).await;

    // Three seconds of guessing from 127.0.0.1: robot secrets of many robot names, and
    // access tokens of many user names, as fast as it goes.
    let attacker = client_from("127.0.0.1");
    let start = Instant::now();
    let mut attempts = 0u32;
    while start.elapsed() < Duration::from_secs(3) {
        let (user, secret) = if attempts.is_multiple_of(2) {
            (format!("robot$team+guess{}", attempts % 40), "Guessed-Secret-0123456789".to_string())
        } else {
            (format!("user{}", attempts % 40), format!("berth_pat_guess{attempts}"))
        };
        assert_eq!(token_status(&t, &attacker, &user, &secret).await, StatusCode::UNAUTHORIZED);
        attempts += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    // The address is out of budget (refused unchecked): the right robot secret and token are refused from it...
    assert_eq!(token_status(&t, &attacker, &robot_name, &robot_secret).await, StatusCode::UNAUTHORIZED);
    assert_eq!(token_status(&t, &attacker, "dev", &pat).await, StatusCode::UNAUTHORIZED);
    let checked = failed_logins(&t, "robot$team+guess%").await + failed_logins(&t, "user%").await;
    let allowed = burst as f64 + per_second * elapsed + 1.0;
    // (The two right secrets above were refused unchecked, so they appear nowhere.)
    assert!(attempts >= 50, "only {attempts} attempts were made");
    assert!(checked as f64 <= allowed, "{checked} of {attempts} guesses were checked in {elapsed:.1}s; at most {allowed} may be");
    assert!(checked >= burst as usize, "{checked}");

    // ...and work from another address.
    let other = client_from("127.0.0.2");
    assert_eq!(token_status(&t, &other, &robot_name, &robot_secret).await, StatusCode::OK);
    assert_eq!(token_status(&t, &other, "dev", &pat).await, StatusCode::OK);
    assert_eq!(v2_basic(&t, &other, &robot_name, &robot_secret).await, StatusCode::OK);

    // One name guessed from one address is refused after five failures, for 30 s, while the
    // address's budget would still allow more.
    let guesser = client_from("127.0.0.3");
    for _ in 0..5 {
        assert_eq!(token_status(&t, &guesser, &robot_name, "Wrong-Secret-0123456789").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(token_status(&t, &guesser, &robot_name, &robot_secret).await, StatusCode::UNAUTHORIZED);
    assert_eq!(token_status(&t, &guesser, "dev", &pat).await, StatusCode::OK, "other names from that address are not refused");
    assert_eq!(token_status(&t, &other, &robot_name, &robot_secret).await, StatusCode::OK);
    t.shutdown().await;
}

/// Caller-chosen robot secrets need at least 16 characters with Harbor's classes.
async fn robot_secrets_are_at_least_16_characters(db: Db) {
    let t = TestApp::start(db).await;
    let admin = ("admin", ADMIN_PASSWORD);
    let robot = |secret: &str| {
        json!({"name": "sys", "level": "system", "duration": -1, "secret": secret, "permissions": [
        {"kind": "system", "namespace": "/", "access": [{"resource": "catalog", "action": "read"}]}]})
    };
    for weak in ["Abcdefg1", "Abcdefg1Abcdefg", "abcdefg1abcdefg1abc", "ABCDEFGHIJKLMNOP1"] {
        let r =
            t.http.post(format!("{}/api/v2.0/robots", t.url)).basic_auth(admin.0, Some(admin.1)).json(&robot(weak)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{weak}");
    }
    let r = t
        .http
        .post(format!("{}/api/v2.0/robots", t.url))
        .basic_auth(admin.0, Some(admin.1))
        .json(&robot("Abcdefg1Abcdefg1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let refresh = |secret: &'static str| {
        t.http.patch(format!("{}/api/v2.0/robots/{id}", t.url)).basic_auth(admin.0, Some(admin.1)).json(&json!({"secret": secret})).send()
    };
    assert_eq!(refresh("Short-Secret-1").await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(refresh("Long-Enough-Secret-1").await.unwrap().status(), StatusCode::OK);
    assert_eq!(token_status(&t, &t.http, "robot$sys", "Long-Enough-Secret-1").await, StatusCode::OK);
    t.shutdown().await;
}

/// A CI farm behind one address: many requests with the right credentials at once, with
/// nothing cached yet (a user's password, a robot's secret, an access token), are all let in.
async fn right_credentials_at_once_are_never_slowed(db: Db) {
    let t = TestApp::start(db).await;
    let robot = json!({"name": "ci", "level": "system", "duration": -1, "permissions": [{"kind": "project", "namespace": "*",
        "access": [{"resource": "repository", "action": "pull"}]}]});
    let (robot_name, robot_secret, pat) = robot_and_token(&t, &robot).await;
    t.app.auth.forget_credentials();
    let farm = client_from("127.0.0.1");
    for (user, secret) in [("dev", PW.to_string()), (robot_name.as_str(), robot_secret), ("dev", pat)] {
        let answers = futures_util::future::join_all((0..64).map(|i| {
            let (farm, user, secret) = (farm.clone(), user.to_string(), secret.clone());
            let t = &t;
            async move {
                // (A robot has no user profile: /users/current is for people.)
                match (i % 3, user.starts_with("robot$")) {
                    (1, _) => token_status(t, &farm, &user, &secret).await,
                    (2, false) => current_user(t, &farm, &user, &secret).await,
                    _ => v2_basic(t, &farm, &user, &secret).await,
                }
            }
        }))
        .await;
        assert!(answers.iter().all(|s| *s == StatusCode::OK), "{user}: {answers:?}");
    }
}

/// Many wrong passwords at once from one address: its password checks run two at a time and
/// each looks at the budget when its turn comes, so the argon2 work the address causes stops
/// at its budget (plus the two running when it ran out), whatever the concurrency.
async fn argon2_work_per_address_is_bounded(db: Db) {
    let t = TestApp::start(db).await;
    let burst = 5u32;
    t.app.auth.set_login_throttle(LoginThrottle {
        address_burst: burst,
        address_refill: Duration::from_secs(60),
        ..LoginThrottle::default()
    });
    let attacker = client_from("127.0.0.1");
    let answers = futures_util::future::join_all((0..40).map(|i| {
        let attacker = attacker.clone();
        let t = &t;
        async move { v2_basic(t, &attacker, &format!("ghost{i}"), "Wrong-Password-1").await }
    }))
    .await;
    assert!(answers.iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{answers:?}");
    let checked = failed_logins(&t, "ghost%").await;
    assert!(checked >= burst as usize && checked <= burst as usize + 2, "{checked} password checks ran");
    // Another address is not held up.
    assert_eq!(v2_basic(&t, &client_from("127.0.0.2"), "admin", ADMIN_PASSWORD).await, StatusCode::OK);
}

on_both_backends! {
    argon2_work_per_address_is_bounded => argon2_work_per_address_is_bounded;
    right_credentials_at_once_are_never_slowed => right_credentials_at_once_are_never_slowed;
    admin_logs_in_while_another_address_hammers => admin_logs_in_while_another_address_hammers;
    robot_and_token_guessing_is_slowed_per_address => robot_and_token_guessing_is_slowed_per_address;
    robot_secrets_are_at_least_16_characters => robot_secrets_are_at_least_16_characters;
}
