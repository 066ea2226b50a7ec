//! `berth-bench auditlog`: Harbor's audit log API on a SQLite database of millions of records.
//!
//! Berth-specific (it starts Berth itself): Berth is started once on an empty data directory
//! so that it creates its schema and admin, stopped, and the database is filled directly with
//! realistic records in big transactions (through Berth's own triggers, so the daily tally is
//! built as in production). Berth is started again on it and each filtered page query is run
//! many times; the table gives p50/p99 and checks every `X-Total-Count` against a direct
//! COUNT(*) on the database.
//!
//! The records span 90 days: 80% artifact pulls (mostly by each project's CI robot, the rest
//! by users, with busy projects far busier than quiet ones), 14% pushes, 2% deletions, 2%
//! logins (a tenth of them failed) and 2% member, project and robot changes. 300 projects,
//! 3,000 users.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};

use crate::data::XorShift;
use crate::stats::{Work, percentiles, run_loop};

const PROJECTS: u64 = 300;
const USERS: u64 = 3_000;
const SPAN_DAYS: i64 = 90;
const DAY: i64 = 86_400_000;
/// Rows per INSERT statement (9 parameters each) and per transaction.
const PER_STATEMENT: usize = 500;
const PER_TRANSACTION: u64 = 200_000;

pub struct Args {
    pub berth: PathBuf,
    pub dir: PathBuf,
    pub reuse: bool,
    pub rows: u64,
    pub requests: u64,
    pub json: Option<PathBuf>,
}

/// One measured query: its name, the API path, and the WHERE clause of the direct count.
struct Query {
    name: &'static str,
    path: String,
    count_where: String,
}

/// A running Berth process, stopped (SIGTERM, then waited for) when dropped.
struct Berth {
    child: Child,
    url: String,
}

impl Drop for Berth {
    fn drop(&mut self) {
        // SIGTERM lets Berth close the database cleanly; kill(1) keeps this crate free of unsafe code.
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

async fn start_berth(bin: &Path, dir: &Path, password: &str) -> Result<Berth, String> {
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("berth.log")).map_err(|e| e.to_string())?;
    let child = Command::new(bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(dir)
        .env("BERTH_ADMIN_PASSWORD", password)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let b = Berth { child, url: format!("http://127.0.0.1:{port}") };
    let http = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(600) {
        if let Ok(r) = http.get(format!("{}/v2/", b.url)).send().await
            && (r.status() == 200 || r.status() == 401)
        {
            return Ok(b);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("Berth did not come up; see {}", dir.join("berth.log").display()))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A project number from 1 to PROJECTS, busy ones (low numbers) far more likely.
fn busy_project(rng: &mut XorShift) -> u64 {
    // Roughly Zipf: 1/u over (0, 1].
    let u = (rng.range(1, 1_000_000) as f64) / 1_000_000.0;
    ((1.0 / u) as u64).clamp(1, PROJECTS)
}

/// One record: (op_time, operator, project_id, resource, resource_type, operation, success, client_ip, user_agent).
type Record = (i64, String, Option<i64>, String, &'static str, &'static str, bool, String, &'static str);

fn record(rng: &mut XorShift, at: i64, i: u64, first_project_id: i64) -> Record {
    let r = rng.range(0, 1000);
    let ip = format!("10.{}.{}.{}", rng.range(0, 4), rng.range(0, 256), rng.range(1, 255));
    let pid = |p: u64| Some(first_project_id + p as i64 - 1);
    if r < 800 {
        let p = busy_project(rng);
        let op = if rng.range(0, 10) < 7 { format!("robot$proj{p}+ci") } else { format!("user{}", (p * 10 + rng.range(0, 10)) % USERS) };
        let res = format!("proj{p}/app{}@sha256:{:064x}", i % 20, rng.next_u64());
        (at, op, pid(p), res, "artifact", "pull", true, ip, "containerd/1.7.22")
    } else if r < 940 {
        let p = busy_project(rng);
        (
            at,
            format!("robot$proj{p}+ci"),
            pid(p),
            format!("proj{p}/app{}:v{}", i % 20, i % 1000),
            "artifact",
            "create",
            true,
            ip,
            "docker/27.3.1",
        )
    } else if r < 960 {
        let p = rng.range(1, PROJECTS + 1);
        (
            at,
            format!("user{}", (p * 10) % USERS),
            pid(p),
            format!("proj{p}/app{}:v{}", i % 20, i % 1000),
            "artifact",
            "delete",
            true,
            ip,
            "Mozilla/5.0",
        )
    } else if r < 980 {
        let u = format!("user{}", rng.range(0, USERS));
        (at, u.clone(), None, u, "user", "login", rng.range(0, 10) != 0, ip, "docker/27.3.1")
    } else {
        let p = rng.range(1, PROJECTS + 1);
        let (res, kind, op) = match rng.range(0, 3) {
            0 => (format!("user{}", rng.range(0, USERS)), "member", "create"),
            1 => (format!("proj{p}"), "project", "update"),
            _ => (format!("robot$proj{p}+ci"), "robot", "update"),
        };
        (at, "admin".into(), pid(p), res, kind, op, true, ip, "Mozilla/5.0")
    }
}

async fn open(db: &Path) -> Result<SqliteConnection, String> {
    let opts = SqliteConnectOptions::new()
        .filename(db)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-1000000")
        .pragma("temp_store", "memory");
    SqliteConnection::connect_with(&opts).await.map_err(|e| format!("{}: {e}", db.display()))
}

/// Fills the database: the projects, then `rows` records in time order over 90 days to now.
async fn fill(db: &Path, rows: u64) -> Result<(), String> {
    let mut c = open(db).await?;
    let e = |e: sqlx::Error| e.to_string();
    let now = now_ms();
    let (first_project_id,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM projects").fetch_one(&mut c).await.map_err(e)?;
    let mut tx = c.begin().await.map_err(e)?;
    for p in 1..=PROJECTS {
        sqlx::query("INSERT INTO projects (name, owner_id, public, creation_time, update_time) VALUES ($1, 1, FALSE, $2, $2)")
            .bind(format!("proj{p}"))
            .bind(now - SPAN_DAYS * DAY)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
    }
    tx.commit().await.map_err(e)?;
    let start = now - SPAN_DAYS * DAY;
    let mut rng = XorShift::new(0xA0D1_7106);
    let t0 = Instant::now();
    let mut i = 0u64;
    let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; PER_STATEMENT].join(", ");
    let full = format!(
        "INSERT INTO audit_log (op_time, operator, project_id, resource, resource_type, operation, success, client_ip, user_agent) VALUES {values}"
    );
    while i < rows {
        let mut tx = c.begin().await.map_err(e)?;
        let end = (i + PER_TRANSACTION).min(rows);
        while i < end {
            let n = (end - i).min(PER_STATEMENT as u64) as usize;
            let text = if n == PER_STATEMENT {
                full.clone()
            } else {
                format!(
                    "INSERT INTO audit_log (op_time, operator, project_id, resource, resource_type, operation, success, client_ip, user_agent) VALUES {}",
                    vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; n].join(", ")
                )
            };
            let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
            for k in 0..n as u64 {
                let at = start + ((SPAN_DAYS * DAY) as f64 * ((i + k) as f64 / rows as f64)) as i64;
                let r = record(&mut rng, at, i + k, first_project_id);
                q = q.bind(r.0).bind(r.1).bind(r.2).bind(r.3).bind(r.4).bind(r.5).bind(r.6).bind(r.7).bind(r.8);
            }
            q.execute(&mut *tx).await.map_err(e)?;
            i += n as u64;
        }
        tx.commit().await.map_err(e)?;
        if i % 1_000_000 < PER_TRANSACTION {
            eprintln!("  {i} records in {:.0}s", t0.elapsed().as_secs_f64());
        }
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut c).await.map_err(e)?;
    sqlx::query("ANALYZE").execute(&mut c).await.map_err(e)?;
    c.close().await.map_err(e)?;
    eprintln!("  filled {rows} records in {:.0}s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// The measured queries; `now` is when the records end.
fn queries(first_project_id: i64, now: i64) -> Vec<Query> {
    let day = |d: i64| now - d * DAY;
    let ts = |ms: i64| {
        let secs = ms.div_euclid(1000);
        // Civil date from days since the epoch (UTC).
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        (format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60), secs * 1000)
    };
    let (from30, from30_ms) = ts(day(30));
    let (to20, to20_ms) = ts(day(20));
    let (from1, from1_ms) = ts(day(45) - 5 * 3_600_000);
    let (to1, to1_ms) = ts(day(44) + 7 * 3_600_000);
    // Encoded twice, as Harbor's own UI sends q (Harbor decodes q once more, `+` included).
    let enc = |s: &str| form_urlencoded_min(&form_urlencoded_min(s));
    let p1 = first_project_id;
    let p7 = first_project_id + 6;
    vec![
        Query { name: "newest page, no filter", path: "/api/v2.0/auditlog-exts?page_size=100".into(), count_where: "1=1".into() },
        Query {
            name: "username=robot$proj1+ci (busiest)",
            path: format!("/api/v2.0/auditlog-exts?page_size=100&q={}", enc("username=robot$proj1+ci")),
            count_where: "operator = 'robot$proj1+ci'".into(),
        },
        Query {
            name: "username=user1234",
            path: format!("/api/v2.0/auditlog-exts?page_size=100&q={}", enc("username=user1234")),
            count_where: "operator = 'user1234'".into(),
        },
        Query {
            name: "resource_type=artifact,operation=pull",
            path: format!("/api/v2.0/auditlog-exts?page_size=100&q={}", enc("resource_type=artifact,operation=pull")),
            count_where: "resource_type = 'artifact' AND operation = 'pull'".into(),
        },
        Query {
            name: "resource_type=artifact",
            path: format!("/api/v2.0/auditlog-exts?page_size=100&q={}", enc("resource_type=artifact")),
            count_where: "resource_type = 'artifact'".into(),
        },
        Query {
            name: "operation=delete",
            path: format!("/api/v2.0/audit-logs?page_size=100&q={}", enc("operation=delete")),
            count_where: "operation = 'delete'".into(),
        },
        Query {
            name: "resource_type=robot",
            path: format!("/api/v2.0/auditlog-exts?page_size=100&q={}", enc("resource_type=robot")),
            count_where: "resource_type = 'robot'".into(),
        },
        Query {
            name: "op_time=[30 days ago~20 days ago]",
            path: format!("/api/v2.0/auditlog-exts?page_size=100&q={}", enc(&format!("op_time=[{from30}~{to20}]"))),
            count_where: format!("op_time >= {from30_ms} AND op_time <= {to20_ms}"),
        },
        Query {
            name: "operation=create,op_time=[30~20 days ago]",
            path: format!("/api/v2.0/auditlog-exts?page_size=100&q={}", enc(&format!("operation=create,op_time=[{from30}~{to20}]"))),
            count_where: format!("operation = 'create' AND op_time >= {from30_ms} AND op_time <= {to20_ms}"),
        },
        Query {
            name: "username=robot$proj1+ci,op_time=[36 h]",
            path: format!("/api/v2.0/auditlog-exts?page_size=100&q={}", enc(&format!("username=robot$proj1+ci,op_time=[{from1}~{to1}]"))),
            count_where: format!("operator = 'robot$proj1+ci' AND op_time >= {from1_ms} AND op_time <= {to1_ms}"),
        },
        Query {
            name: "project proj1 (busiest), legacy /logs",
            path: "/api/v2.0/projects/proj1/logs?page_size=100".into(),
            count_where: format!("project_id = {p1}"),
        },
        Query {
            name: "project proj7, operation=delete",
            path: format!("/api/v2.0/projects/proj7/auditlog-exts?page_size=100&q={}", enc("operation=delete")),
            count_where: format!("project_id = {p7} AND operation = 'delete'"),
        },
        Query {
            name: "resource_type=user,operation=login, page 50",
            path: format!("/api/v2.0/auditlog-exts?page=50&page_size=100&q={}", enc("resource_type=user,operation=login")),
            count_where: "resource_type = 'user' AND operation = 'login'".into(),
        },
    ]
}

/// Percent-encodes a `q` value (everything but unreserved characters).
fn form_urlencoded_min(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

pub async fn run(a: Args) -> Result<bool, String> {
    std::fs::create_dir_all(&a.dir).map_err(|e| format!("{}: {e}", a.dir.display()))?;
    let db = a.dir.join("berth.db");
    // The admin password of the database, kept beside it for --reuse.
    let password_file = a.dir.join("bench-admin-password");
    let reused = db.exists();
    if reused && !a.reuse {
        return Err(format!("{} exists: give an empty --dir, or --reuse to reuse it", db.display()));
    }
    let (password, fill_secs) = if reused {
        let p = std::fs::read_to_string(&password_file).map_err(|e| format!("{}: {e}", password_file.display()))?;
        eprintln!("== auditlog: reusing {}", db.display());
        (p.trim().to_string(), None)
    } else {
        let mut seed = [0u8; 8];
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed)).map_err(|e| e.to_string())?;
        let password = format!("Bench-{}", seed.iter().map(|b| format!("{b:02x}")).collect::<String>());
        std::fs::write(&password_file, &password).map_err(|e| format!("{}: {e}", password_file.display()))?;
        eprintln!("== auditlog: schema (Berth on an empty data directory)");
        drop(start_berth(&a.berth, &a.dir, &password).await?);
        eprintln!("== auditlog: filling {} records", a.rows);
        let t = Instant::now();
        fill(&db, a.rows).await?;
        (password, Some(t.elapsed().as_secs_f64()))
    };
    // Berth applies its migrations before the totals are counted directly.
    if reused {
        drop(start_berth(&a.berth, &a.dir, &password).await?);
    }
    let (first_project_id, records, now) = {
        let mut c = open(&db).await?;
        let e = |e: sqlx::Error| e.to_string();
        let (id,): (i64,) = sqlx::query_as("SELECT id FROM projects WHERE name = 'proj1'").fetch_one(&mut c).await.map_err(e)?;
        // Records end when the fill ended: now for a fresh database, the newest record for a reused one.
        let now = if reused {
            sqlx::query_as::<_, (i64,)>("SELECT MAX(op_time) FROM audit_log").fetch_one(&mut c).await.map_err(e)?.0
        } else {
            now_ms()
        };
        let records = if reused {
            sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM audit_log").fetch_one(&mut c).await.map_err(e)?.0 as u64
        } else {
            a.rows
        };
        (id, records, now)
    };
    let qs = queries(first_project_id, now);
    // Expected totals, counted directly.
    let mut expected = Vec::new();
    {
        let mut c = open(&db).await?;
        for q in &qs {
            let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM audit_log WHERE {}", q.count_where)))
                .fetch_one(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            expected.push(n);
        }
    }
    let size_mb = std::fs::metadata(&db).map(|m| m.len() as f64 / 1e6).unwrap_or(0.0);
    eprintln!("== auditlog: Berth on the filled database ({size_mb:.0} MB)");
    let berth = start_berth(&a.berth, &a.dir, &password).await?;
    let http = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(4).build().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let mut all_ok = true;
    for (q, want) in qs.iter().zip(expected) {
        eprintln!("  {}", q.name);
        let url = format!("{}{}", berth.url, q.path);
        let page: i64 = q.path.split(['?', '&']).find_map(|kv| kv.strip_prefix("page=")).and_then(|v| v.parse().ok()).unwrap_or(1);
        let (h, u, p) = (http.clone(), url.clone(), password.clone());
        // Warm-up: the credential check (argon2) and the first read of the pages.
        for _ in 0..3 {
            h.get(&u).basic_auth("admin", Some(&p)).send().await.map_err(|e| e.to_string())?;
        }
        let mut out = run_loop(1, a.requests, Duration::from_secs(120), move |_| {
            let (h, u, p) = (h.clone(), u.clone(), p.clone());
            async move {
                let r = h.get(&u).basic_auth("admin", Some(&p)).send().await.map_err(|e| e.to_string())?;
                if r.status() != 200 {
                    return Err(format!("HTTP {}: {}", r.status(), r.text().await.unwrap_or_default()));
                }
                let total: i64 = r.headers().get("x-total-count").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(-1);
                let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                let n = body.as_array().map(Vec::len).unwrap_or(0);
                if total != want {
                    return Err(format!("X-Total-Count {total}, expected {want}"));
                }
                if n as i64 != (want - (page - 1) * 100).clamp(0, 100) {
                    return Err(format!("{n} items on the page"));
                }
                Ok(Work::requests(1))
            }
        })
        .await;
        let pct = percentiles(&mut out.latencies);
        let ok = out.errors == 0;
        all_ok &= ok;
        rows.push(serde_json::json!({
            "query": q.name, "path": q.path, "requests": out.ok, "errors": out.errors, "total": want,
            "p50_ms": pct.p50, "p90_ms": pct.p90, "p99_ms": pct.p99, "max_ms": pct.max,
            "error": out.first_error,
        }));
    }
    drop(berth);
    let mut md = String::new();
    let filled = fill_secs.map(|s| format!("filled in {s:.0} s")).unwrap_or_else(|| "reused".into());
    md.push_str(&format!(
        "{records} records ({size_mb:.0} MB database, {filled}); {} sequential requests per query, as admin, page_size 100.\n\n",
        a.requests
    ));
    md.push_str("| query | X-Total-Count | p50 ms | p90 ms | p99 ms | max ms | result |\n|---|---:|---:|---:|---:|---:|---|\n");
    for r in &rows {
        let f = |k: &str| format!("{:.1}", r[k].as_f64().unwrap_or(0.0));
        let result = if r["errors"] == 0 { "ok".to_string() } else { format!("FAILED: {}", r["error"].as_str().unwrap_or("")) };
        md.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {result} |\n",
            r["query"].as_str().unwrap_or(""),
            r["total"],
            f("p50_ms"),
            f("p90_ms"),
            f("p99_ms"),
            f("max_ms")
        ));
    }
    println!("{md}");
    if let Some(path) = &a.json {
        let body = serde_json::json!({"rows": records, "fill_seconds": fill_secs, "database_mb": size_mb, "queries": rows});
        std::fs::write(path, serde_json::to_string_pretty(&body).unwrap_or_default()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(all_ok)
}
