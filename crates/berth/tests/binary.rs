//! The built `berth` binary: its defaults, its configuration sources, PostgreSQL
//! by flag, a clean exit on SIGTERM, its descriptors under slow clients, and log lines
//! that a client's input cannot forge.

mod common;

use reqwest::StatusCode;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn berth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.env_remove("BERTH_ADMIN_PASSWORD").env("BERTH_LOG", "warn");
    c
}

async fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("{url}/v2/")).await
            && r.status() == StatusCode::UNAUTHORIZED
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("berth did not answer on {url}");
}

fn terminate(mut child: Child) -> std::process::ExitStatus {
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "berth did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn token(url: &str, user: &str, password: &str, scope: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{url}/service/token"))
        .query(&[("service", "harbor-registry"), ("scope", scope)])
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
}

/// `berth serve` with no configuration: port 5000, ./data, SQLite, a generated admin password printed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_with_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = berth().arg("serve").current_dir(dir.path()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line on stdout").unwrap();
    let password = first.rsplit(' ').next().unwrap().to_string();
    assert!(first.contains("'admin'") && password.len() >= 20, "{first}");
    let url = "http://127.0.0.1:5000";
    wait_ready(url).await;
    assert_eq!(token(url, "admin", &password, "registry:catalog:*").await.status(), StatusCode::OK);
    assert_eq!(token(url, "admin", "wrong", "registry:catalog:*").await.status(), StatusCode::UNAUTHORIZED);
    assert!(dir.path().join("data/berth.db").is_file(), "SQLite database under ./data");
    assert!(dir.path().join("data/storage").is_dir(), "blobs under ./data");
    let status = terminate(child);
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    // The password was not written anywhere in the data directory in clear.
    let db = std::fs::read(dir.path().join("data/berth.db")).unwrap();
    assert!(!db.windows(password.len()).any(|w| w == password.as_bytes()));
    // A second start keeps the account: no new password is printed.
    let mut child = berth().arg("serve").current_dir(dir.path()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    wait_ready(url).await;
    assert_eq!(token(url, "admin", &password, "registry:catalog:*").await.status(), StatusCode::OK);
    let out = child.stdout.take().unwrap();
    assert!(terminate(child).success());
    assert_eq!(BufReader::new(out).lines().count(), 0, "the password is shown only on first start");
}

/// Flags win over the environment, which wins over the TOML file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let port = |n: u16| 20_000 + (std::process::id() as u16 % 10_000) + n;
    let (p_file, p_env, p_flag) = (port(1), port(2), port(3));
    std::fs::write(
        dir.path().join("berth.toml"),
        format!(
            "listen = \"127.0.0.1:{p_file}\"\ndata = \"{}\"\ntoken_service = \"from-file\"\nadmin_password = \"file-pw-123\"\n",
            dir.path().join("d").display()
        ),
    )
    .unwrap();
    let child = berth()
        .args(["serve", "--config", "berth.toml", "--listen", &format!("127.0.0.1:{p_flag}")])
        .env("BERTH_LISTEN", format!("127.0.0.1:{p_env}"))
        .env("BERTH_TOKEN_SERVICE", "from-env")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{p_flag}");
    wait_ready(&url).await;
    let r = reqwest::get(format!("{url}/v2/")).await.unwrap();
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.contains("service=\"from-env\""), "{challenge}");
    assert_eq!(token(&url, "admin", "file-pw-123", "registry:catalog:*").await.status(), StatusCode::OK);
    assert!(dir.path().join("d/berth.db").is_file());
    assert!(terminate(child).success());
}

/// `--database postgres://...` keeps metadata in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_postgres() {
    let db = common::postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let port = 30_000 + (std::process::id() as u16 % 10_000);
    let child = berth()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data", &dir.path().display().to_string(), "--database", &db])
        .env("BERTH_ADMIN_PASSWORD", "pg-admin-pw")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&url).await;
    let r = token(&url, "admin", "pg-admin-pw", "repository:library/pg:pull,push").await;
    let tok = r.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let data = b"stored in postgres";
    let digest = common::sha256(data);
    let r = http
        .post(format!("{url}/v2/library/pg/blobs/uploads/?digest={digest}"))
        .bearer_auth(&tok)
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(terminate(child).success());
    // The rows are in PostgreSQL, not in a SQLite file.
    assert!(!dir.path().join("berth.db").exists());
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM blobs WHERE digest = $1").bind(&digest).fetch_one(&pool).await.unwrap();
    assert_eq!(n, 1);
    let (users,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE username = 'admin'").fetch_one(&pool).await.unwrap();
    assert_eq!(users, 1);
}

/// No password, access token or robot secret reaches a log line, even at debug level
/// and when logins fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let port = 40_000 + (std::process::id() as u16 % 10_000);
    let admin_pw = "Admin-Secret-Pw-42";
    let log_path = dir.path().join("stderr.log");
    let child = berth()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data", &dir.path().join("d").display().to_string()])
        .env("BERTH_ADMIN_PASSWORD", admin_pw)
        .env("BERTH_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&url).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/api/berth/v1/users/current/tokens"))
        .basic_auth("admin", Some(admin_pw))
        .json(&serde_json::json!({"name": "t"}))
        .send()
        .await
        .unwrap();
    let pat = r.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let r = http
        .post(format!("{url}/api/v2.0/robots"))
        .basic_auth("admin", Some(admin_pw))
        .json(&serde_json::json!({"name": "r", "level": "system", "permissions": [{"kind": "system", "namespace": "/", "access": [{"resource": "catalog", "action": "read"}]}]}))
        .send()
        .await
        .unwrap();
    let robot_secret = r.json::<serde_json::Value>().await.unwrap()["secret"].as_str().unwrap().to_string();
    let wrong = "Wrong-Password-Guess-7";
    for (user, secret) in
        [("admin", admin_pw), ("admin", pat.as_str()), ("robot$r", robot_secret.as_str()), ("admin", wrong), ("nobody", wrong)]
    {
        let _ = token(&url, user, secret, "registry:catalog:*").await;
        let _ = http.get(format!("{url}/v2/_catalog")).basic_auth(user, Some(secret)).send().await.unwrap();
        let _ = http.get(format!("{url}/api/v2.0/users/current")).basic_auth(user, Some(secret)).send().await.unwrap();
    }
    let tok = token(&url, "admin", admin_pw, "registry:catalog:*").await.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let _ = http.get(format!("{url}/v2/_catalog")).bearer_auth(&tok).send().await.unwrap();
    assert!(terminate(child).success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.is_empty(), "debug logging wrote something");
    for secret in [admin_pw, pat.as_str(), robot_secret.as_str(), wrong, tok.as_str()] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{admin_pw}"));
    assert!(!log.contains(&basic), "an Authorization header reached the log");
}

/// The server's open descriptors.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

/// A connection from `from` (a 127.0.0.0/8 address) to `port`.
async fn connect_from(from: &str, port: u16) -> tokio::net::TcpStream {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind(format!("{from}:0").parse().unwrap()).unwrap();
    s.connect(format!("127.0.0.1:{port}").parse().unwrap()).await.unwrap()
}

/// Hundreds of connections that send nothing, drip their header or stall their body take
/// the server's descriptors only until their timeouts close them, and pushes go on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_give_their_descriptors_back() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let port = 45_000 + (std::process::id() as u16 % 10_000);
    let child = berth()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data", &dir.path().display().to_string()])
        .args(["--header-timeout", "3", "--idle-timeout", "3", "--body-timeout", "3", "--max-connections-per-ip", "100"])
        .env("BERTH_ADMIN_PASSWORD", "Fd-Admin-Pw-1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&url).await;
    let r = token(&url, "admin", "Fd-Admin-Pw-1", "repository:library/fd:pull,push").await;
    let tok = r.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let push = |n: u8| {
        let (http, url, tok) = (http.clone(), url.clone(), tok.clone());
        async move {
            let data = vec![n; 200_000];
            let digest = common::sha256(&data);
            let r =
                http.post(format!("{url}/v2/library/fd/blobs/uploads/?digest={digest}")).bearer_auth(&tok).body(data).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::CREATED, "a push while slow clients hold connections");
        }
    };
    // Warm up: the database pools open what they keep open.
    futures_util::future::join_all((0..8).map(push)).await;
    let baseline = descriptors(pid);

    let mut slow = Vec::new();
    let mut dripping = Vec::new();
    let mut drips = Vec::new();
    for (i, from) in ["127.0.0.2", "127.0.0.3", "127.0.0.4"].iter().enumerate() {
        for _ in 0..100 {
            let mut s = connect_from(from, port).await;
            match i {
                0 => {}
                1 => {
                    s.write_all(b"GET /v2/ HTTP/1.1\r\nhost: berth\r\nx-slow: ").await.unwrap();
                    let (r, mut w) = s.into_split();
                    drips.push(tokio::spawn(async move {
                        while w.write_all(b"a").await.is_ok() {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }));
                    dripping.push(r);
                    continue;
                }
                _ => {
                    let head = "POST /api/v2.0/projects HTTP/1.1\r\nhost: berth\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{";
                    s.write_all(head.as_bytes()).await.unwrap();
                }
            }
            // Kept whole: dropping a write half would send FIN.
            slow.push(s);
        }
    }
    // Beyond the cap per address: refused at once, holding nothing.
    let mut over = connect_from("127.0.0.2", port).await;
    let mut buf = Vec::new();
    use tokio::io::AsyncReadExt;
    tokio::time::timeout(Duration::from_secs(5), over.read_to_end(&mut buf)).await.expect("closed at once").unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 503"), "{}", String::from_utf8_lossy(&buf));

    tokio::time::sleep(Duration::from_millis(200)).await;
    let held = descriptors(pid);
    assert!(held >= baseline + 290, "300 slow connections are open: {held} descriptors, {baseline} before");
    futures_util::future::join_all((10..14).map(push)).await;
    // The timeouts close them all.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut now = descriptors(pid);
    while now > baseline + 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        now = descriptors(pid);
    }
    assert!(now <= baseline + 20, "descriptors back to {now} from {held} (baseline {baseline})");
    for d in drips {
        d.await.unwrap();
    }
    push(20).await;
    drop((slow, dripping));
    assert!(terminate(child).success());
}

/// A Basic user name with a line break (or a terminal escape, or a bidirectional override)
/// reaches the log escaped, on the one line of its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_escape_client_input() {
    let dir = tempfile::tempdir().unwrap();
    let port = 47_000 + (std::process::id() as u16 % 10_000);
    let log_path = dir.path().join("stderr.log");
    let child = berth()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data", &dir.path().join("d").display().to_string()])
        .env("BERTH_ADMIN_PASSWORD", "Log-Admin-Pw-1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&url).await;
    let forged = "ghost\nFORGED INFO admin logged in\u{1b}[2K\u{202e}";
    for _ in 0..6 {
        assert_eq!(token(&url, forged, "Wrong-Pw-1", "registry:catalog:*").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(terminate(child).success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    let line = log.lines().find(|l| l.contains("repeated failed logins")).unwrap_or_else(|| panic!("the lock-out is logged: {log}"));
    assert!(line.contains(r"ghost\nFORGED INFO admin logged in\u{1b}[2K\u{202e}"), "{line}");
    assert!(!log.lines().any(|l| l.starts_with("FORGED")), "a forged line: {log}");
    assert!(!log.contains('\u{1b}') && !log.contains('\u{202e}'), "raw control characters in the log");
}
