//! Harbor's audit log API over HTTP, on SQLite and PostgreSQL: records written by project,
//! member, robot and user changes (operator, resource, type, operation, time, client address
//! and user agent); every `q` filter, sorting and paging with `X-Total-Count` and `Link`;
//! exact totals over time ranges that cross days (the daily tally and the partial days at
//! either end, also after rows are deleted or changed); who may read which records; failed
//! logins recorded without the password. Every JSON body is checked against Harbor's contract.

mod common;
mod contract;
mod harbor;

use berth::meta::Audit;
use common::{ADMIN_PASSWORD, Db, TestApp};
use harbor::{Resp, Who, api, call, call_with};
use serde_json::{Value, json};
use std::str::FromStr;

const PW: &str = "Member-Passw0rd";
const ADMIN: Who = Some(("admin", ADMIN_PASSWORD));
const EXTS: &str = "/auditlog-exts";
const LOGS: &str = "/audit-logs";
const PROJECT_EXTS: &str = "/projects/{project_name}/auditlog-exts";
const PROJECT_LOGS: &str = "/projects/{project_name}/logs";
const DAY: i64 = 86_400_000;

/// A GET of an audit list, checked against the contract.
async fn list(t: &TestApp, template: &str, path: &str, who: Who) -> Resp {
    api(t, "GET", template, path, who, None).await
}

fn setup_audit() -> Audit {
    Audit { operator: "test".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() }
}

async fn users(t: &TestApp, names: &[&str]) {
    let hash = berth::auth::hash_password(PW).await.unwrap();
    for n in names {
        t.app.meta.create_user(n, &hash, false, &setup_audit()).await.unwrap();
    }
}

fn as_user(name: &'static str) -> Who {
    Some((name, PW))
}

/// `q` encoded for a URL.
/// Both lists (route template, path) report `want` records for the q `filter`: a page of 100
/// through the first, which must hold the first min(want, 100) of them, and a page of one
/// through the second.
async fn assert_totals(t: &TestApp, first: (&str, &str), second: (&str, &str), filter: &str, want: i64) {
    let r = list(t, first.0, &format!("{}?page_size=100&q={}", first.1, q(filter)), ADMIN).await;
    assert_eq!(r.status, 200, "{filter}: {}", r.text);
    assert_eq!(r.total(), want, "{filter}");
    assert_eq!(r.items().len() as i64, want.min(100), "{filter}");
    let r = list(t, second.0, &format!("{}?page_size=1&q={}", second.1, q(filter)), ADMIN).await;
    assert_eq!(r.total(), want, "{filter}");
}

fn q(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Runs SQL on the test's database directly (to read what the API does not show, and to
/// write old records).
/// Inserts audit records straight into the table (each value a `(op_time, ..., user_agent)` row).
async fn insert_audit_rows(t: &TestApp, values: &[String]) {
    let columns = "op_time, operator, project_id, resource, resource_type, operation, success, client_ip, user_agent";
    sql_exec(t, &format!("INSERT INTO audit_log ({columns}) VALUES {}", values.join(", "))).await;
}

async fn sql_exec(t: &TestApp, text: &str) {
    let url = t.app.config.database.clone();
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(text.to_string())).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(text.to_string())).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// Every (operator, resource, resource_type, operation, success, client_ip, user_agent) row.
type Row = (String, String, String, String, bool, String, String);
async fn sql_rows(t: &TestApp) -> Vec<Row> {
    let url = t.app.config.database.clone();
    let text = "SELECT operator, resource, resource_type, operation, success, client_ip, user_agent FROM audit_log ORDER BY id";
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let rows = sqlx::query_as(text).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    } else {
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap().read_only(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let rows = sqlx::query_as(text).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    }
}

/// `SELECT COUNT(*) FROM audit_log WHERE {cond}` on the test's database.
async fn sql_count(t: &TestApp, cond: &str) -> i64 {
    let url = t.app.config.database.clone();
    let text = format!("SELECT COUNT(*) FROM audit_log WHERE {cond}");
    let (n,): (i64,) = if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let n = sqlx::query_as(sqlx::AssertSqlSafe(text)).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap().read_only(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let n = sqlx::query_as(sqlx::AssertSqlSafe(text)).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    };
    n
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// Changes through the API are recorded with who, what, when, from where; every filter,
/// sort and page of both list models.
async fn records_and_filters(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["pa", "dev"]).await;
    let start = berth::meta::now_ms() - 1000;
    let from = [("x-forwarded-for", "203.0.113.7, 10.0.0.1"), ("user-agent", "audit-test/1.0")];
    let r = call_with(&t, "POST", "/api/v2.0/projects", ADMIN, Some(json!({"project_name": "team"})), &from).await;
    assert_eq!(r.status, 201, "{}", r.text);
    for (name, role) in [("pa", 1), ("dev", 2)] {
        let body = json!({"role_id": role, "member_user": {"username": name}});
        let r = call_with(&t, "POST", "/api/v2.0/projects/team/members", ADMIN, Some(body), &from).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let robot = json!({"name": "ci", "level": "project", "duration": -1,
        "permissions": [{"kind": "project", "namespace": "team", "access": [{"resource": "repository", "action": "pull"}]}]});
    let r = call_with(&t, "POST", "/api/v2.0/robots", ADMIN, Some(robot), &from).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = call_with(&t, "PUT", "/api/v2.0/projects/team", ADMIN, Some(json!({"metadata": {"auto_scan": "true"}})), &from).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = call_with(
        &t,
        "POST",
        "/api/v2.0/users",
        ADMIN,
        Some(json!({"username": "newbie", "email": "n@example.com", "realname": "N", "password": "Newbie-Passw0rd"})),
        &from,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let end = berth::meta::now_ms() + 1000;

    // Newest first, in the new model.
    let r = list(&t, EXTS, "/auditlog-exts?page_size=100", ADMIN).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let all = r.items().clone();
    assert_eq!(r.total(), all.len() as i64);
    let mine: Vec<(&str, &str, &str, &str)> = all
        .iter()
        .filter(|v| v["username"] == "admin")
        .map(|v| (field(v, "username"), field(v, "resource"), field(v, "resource_type"), field(v, "operation")))
        .collect();
    assert_eq!(
        mine[..6],
        [
            ("admin", "newbie", "user", "create"),
            ("admin", "team", "project", "update"),
            ("admin", "robot$team+ci", "robot", "create"),
            ("admin", "dev", "member", "create"),
            ("admin", "pa", "member", "create"),
            ("admin", "team", "project", "create"),
        ]
    );
    let ids: Vec<i64> = all.iter().map(|v| v["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let project_create = all.iter().find(|v| v["resource_type"] == "project" && v["operation"] == "create").unwrap();
    assert_eq!(project_create["operation_description"], "create project: team");
    assert_eq!(project_create["operation_result"], true);
    let member = all.iter().find(|v| v["resource"] == "pa").unwrap();
    assert_eq!(member["operation_description"], "create member with name: pa");
    for v in &all {
        let t = field(v, "op_time");
        assert!(contract::is_rfc3339(t), "{t}");
    }
    // The time is the time of the change.
    let r = list(&t, EXTS, &format!("/auditlog-exts?q={}", q(&format!("op_time=[{}~{}]", fmt(start), fmt(end)))), ADMIN).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.total() >= 6, "{}", r.text);
    // Client address (the first X-Forwarded-For hop) and user agent, in the table.
    let rows = sql_rows(&t).await;
    let changes: Vec<&Row> = rows.iter().filter(|r| r.0 == "admin" && r.2 != "test").collect();
    assert!(changes.len() >= 6);
    for r in &changes[changes.len() - 6..] {
        assert_eq!((r.5.as_str(), r.6.as_str()), ("203.0.113.7", "audit-test/1.0"), "{r:?}");
    }

    // The legacy model holds the same records without the extended fields.
    let r = list(&t, LOGS, "/audit-logs?page_size=100", ADMIN).await;
    assert_eq!(r.total(), all.len() as i64);
    let first = &r.items()[0];
    assert_eq!(first["id"], all[0]["id"]);
    assert_eq!(first["username"], "admin");
    assert!(first.get("operation_description").is_none() && first.get("operation_result").is_none());

    // Each filter, with its total.
    let count = |pred: &dyn Fn(&Value) -> bool| all.iter().filter(|v| pred(v)).count() as i64;
    let cases: Vec<(&str, i64)> = vec![
        ("username=admin", count(&|v| v["username"] == "admin")),
        ("operator=admin", count(&|v| v["username"] == "admin")),
        ("username=~ADM", count(&|v| field(v, "username").to_lowercase().contains("adm"))),
        ("resource=team", count(&|v| v["resource"] == "team")),
        ("resource=~EA", count(&|v| field(v, "resource").to_lowercase().contains("ea"))),
        ("resource_type=member", 2),
        ("resource_type={member robot}", 3),
        ("operation=update", count(&|v| v["operation"] == "update")),
        ("resource_type=project,operation=create", count(&|v| v["resource_type"] == "project" && v["operation"] == "create")),
        ("username=admin,resource_type=~mem", 2),
        ("username=nobody", 0),
        ("op_time=[2100-01-01 00:00:00~]", 0),
        ("op_time=[~2000-01-01]", 0),
    ];
    for (filter, want) in cases {
        let r = list(&t, EXTS, &format!("/auditlog-exts?page_size=100&q={}", q(filter)), ADMIN).await;
        assert_eq!(r.status, 200, "{filter}: {}", r.text);
        assert_eq!((filter, r.total()), (filter, want), "{}", r.text);
        assert_eq!(r.items().len() as i64, want, "{filter}");
        let r = list(&t, LOGS, &format!("/audit-logs?page_size=100&q={}", q(filter)), ADMIN).await;
        assert_eq!((filter, r.total()), (filter, want));
    }
    let r = list(&t, EXTS, &format!("/auditlog-exts?q={}", q("resource_type=member")), ADMIN).await;
    assert!(r.items().iter().all(|v| v["resource_type"] == "member"));
    // Bad queries say what is allowed.
    for bad in ["password=x", "op_time=[yesterday~]", "op_time=~2020", "username=[a~b]"] {
        let r = list(&t, EXTS, &format!("/auditlog-exts?q={}", q(bad)), ADMIN).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    let r = list(&t, EXTS, "/auditlog-exts?sort=password", ADMIN).await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("op_time"), "{}", r.text);

    // Sorting: oldest first, and by resource.
    let r = list(&t, EXTS, "/auditlog-exts?page_size=100&sort=op_time", ADMIN).await;
    let asc: Vec<i64> = r.items().iter().map(|v| v["id"].as_i64().unwrap()).collect();
    assert_eq!(asc, ids.iter().rev().copied().collect::<Vec<_>>());
    let r = list(&t, EXTS, "/auditlog-exts?page_size=100&sort=resource,-id", ADMIN).await;
    let res: Vec<String> = r.items().iter().map(|v| field(v, "resource").to_string()).collect();
    let mut sorted = res.clone();
    sorted.sort();
    assert_eq!(res, sorted);

    // Paging: X-Total-Count on every page, Link to the neighbours.
    let total = all.len() as i64;
    let r = list(&t, EXTS, "/auditlog-exts?page=1&page_size=2", ADMIN).await;
    assert_eq!(r.total(), total);
    assert_eq!(r.items().len(), 2);
    assert_eq!(r.items()[0]["id"], all[0]["id"]);
    assert_eq!(r.header("link").unwrap(), r#"</api/v2.0/auditlog-exts?page=2&page_size=2>; rel="next""#);
    let r = list(&t, EXTS, &format!("/auditlog-exts?page=2&page_size=2&q={}", q("username=admin")), ADMIN).await;
    assert_eq!(r.items()[0]["id"], all.iter().filter(|v| v["username"] == "admin").nth(2).unwrap()["id"]);
    let link = r.header("link").unwrap();
    assert!(link.contains(r#"page=1&page_size=2>; rel="prev""#) && link.contains(r#"page=3&page_size=2>; rel="next""#), "{link}");
    assert!(link.contains("q=username%3Dadmin"), "{link}");
    let last = (total + 1) / 2;
    let r = list(&t, EXTS, &format!("/auditlog-exts?page={last}&page_size=2"), ADMIN).await;
    assert!(!r.header("link").unwrap().contains("next"));
    let r = list(&t, EXTS, &format!("/auditlog-exts?page={}&page_size=2", last + 1), ADMIN).await;
    assert_eq!((r.items().len(), r.total()), (0, total));
    let r = list(&t, EXTS, "/auditlog-exts?page_size=101", ADMIN).await;
    assert_eq!(r.status, 422);
    let r = list(&t, EXTS, "/auditlog-exts?page=0", ADMIN).await;
    assert_eq!(r.status, 422);

    // The project lists: only the project's records.
    let r = list(&t, PROJECT_EXTS, "/projects/team/auditlog-exts?page_size=100", ADMIN).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> = r.items().iter().map(|v| field(v, "resource")).collect();
    assert_eq!(names, ["team", "robot$team+ci", "dev", "pa", "team"]);
    assert_eq!(r.total(), 5);
    let r = list(&t, PROJECT_LOGS, &format!("/projects/team/logs?q={}", q("resource_type=member")), ADMIN).await;
    assert_eq!((r.status, r.total()), (200, 2));
    let r = list(&t, PROJECT_LOGS, &format!("/projects/team/logs?q={}", q("project_id=1")), ADMIN).await;
    assert_eq!(r.status, 400);
    t.shutdown().await;
}

fn fmt(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap();
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

/// Totals are exact over ranges that cross days, begin or end inside a day, or hold none;
/// also after records are deleted or changed.
async fn totals_across_days(db: Db) {
    let t = TestApp::start(db).await;
    let r = api(&t, "POST", "/projects", "/projects", ADMIN, Some(json!({"project_name": "bulk"}))).await;
    assert_eq!(r.status, 201);
    let pid: i64 = r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap();
    // 120 pulls and pushes, 5 hours apart from 2020-01-01: 25 days.
    let base = 1_577_836_800_000i64;
    let rows: Vec<(i64, &str, &str)> = (0..120)
        .map(|i| (base + i * 5 * 3_600_000 + 1234, if i % 3 == 0 { "ci-a" } else { "ci-b" }, if i % 4 == 0 { "create" } else { "pull" }))
        .collect();
    let values: Vec<String> = rows
        .iter()
        .map(|(at, who, op)| format!("({at}, '{who}', {pid}, 'bulk/app:v1', 'artifact', '{op}', TRUE, '10.1.1.1', 'docker')"))
        .collect();
    insert_audit_rows(&t, &values).await;
    let expect = |rows: &[(i64, &str, &str)], from: Option<i64>, to: Option<i64>, who: Option<&str>, op: Option<&str>| {
        rows.iter()
            .filter(|(at, w, o)| {
                from.is_none_or(|f| *at >= f) && to.is_none_or(|x| *at <= x) && who.is_none_or(|x| x == *w) && op.is_none_or(|x| x == *o)
            })
            .count() as i64
    };
    let ranges: Vec<(Option<i64>, Option<i64>)> = vec![
        (None, None),
        (Some(base), Some(base + 25 * DAY)),
        (Some(base + 3 * DAY + 7_200_000), Some(base + 11 * DAY + 3_600_000)),
        (Some(base + DAY), Some(base + 2 * DAY - 1000)),
        (Some(base + 5 * DAY + 100), Some(base + 5 * DAY + 50_000_000)),
        (Some(base + 9 * DAY + 1000), None),
        (None, Some(base + 17 * DAY + 12_345_000)),
        (Some(base + 30 * DAY), None),
    ];
    let check_all = |rows: Vec<(i64, &'static str, &'static str)>| {
        let t = &t;
        let ranges = ranges.clone();
        async move {
            for (from, to) in &ranges {
                for (who, op) in [(None, None), (Some("ci-a"), None), (None, Some("pull")), (Some("ci-b"), Some("create"))] {
                    let mut parts = vec!["resource_type=artifact".to_string()];
                    if from.is_some() || to.is_some() {
                        parts.push(format!("op_time=[{}~{}]", from.map(fmt).unwrap_or_default(), to.map(fmt).unwrap_or_default()));
                    }
                    if let Some(w) = who {
                        parts.push(format!("username={w}"));
                    }
                    if let Some(o) = op {
                        parts.push(format!("operation={o}"));
                    }
                    let filter = parts.join(",");
                    // The range bounds are whole seconds in q.
                    let want = expect(&rows, from.map(|v| v / 1000 * 1000), to.map(|v| v / 1000 * 1000), who, op);
                    assert_totals(t, (PROJECT_EXTS, "/projects/bulk/auditlog-exts"), (EXTS, "/auditlog-exts"), &filter, want).await;
                }
            }
        }
    };
    check_all(rows.clone()).await;
    // Deleting and changing records keeps the totals exact.
    let cut = base + 40 * 5 * 3_600_000;
    sql_exec(&t, &format!("DELETE FROM audit_log WHERE resource = 'bulk/app:v1' AND op_time < {cut}")).await;
    sql_exec(&t, "UPDATE audit_log SET operator = 'ci-b' WHERE operator = 'ci-a' AND resource = 'bulk/app:v1' AND operation = 'pull'")
        .await;
    let changed: Vec<(i64, &str, &str)> = rows
        .iter()
        .filter(|(at, _, _)| *at >= cut)
        .map(|(at, w, o)| (*at, if *w == "ci-a" && *o == "pull" { "ci-b" } else { *w }, *o))
        .collect();
    check_all(changed).await;
    t.shutdown().await;
}

/// Totals of filters that name neither a user nor a project (no filter, a time range,
/// resource_type, operation) are exact for ranges that begin or end inside an hour, on whole
/// hours, within one hour or across days; also after records are deleted, moved to another
/// hour or given another operation.
async fn totals_by_hour(db: Db) {
    let t = TestApp::start(db).await;
    // 2020-03-01 00:00 UTC; 300 records 11 min 7 s apart (about 55 hours), of five kinds.
    let base = 1_583_020_800_000i64;
    let kinds = [("artifact", "pull"), ("artifact", "create"), ("artifact", "delete"), ("user", "login"), ("project", "update")];
    let rows: Vec<(i64, &str, &str)> =
        (0..300i64).map(|i| (base + i * 667_000 + 250, kinds[(i * i % 7 % 5) as usize].0, kinds[(i * i % 7 % 5) as usize].1)).collect();
    let values: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, (at, kind, op))| format!("({at}, 'user{}', NULL, 'thing{i}', '{kind}', '{op}', TRUE, '10.1.1.1', 'docker')", i % 4))
        .collect();
    insert_audit_rows(&t, &values).await;
    let h = 3_600_000i64;
    let m = 60_000i64;
    let ranges: Vec<(Option<i64>, Option<i64>)> = vec![
        (None, None),
        (Some(base + 10 * m), Some(base + 5 * h + 20 * m)),
        (Some(base + 2 * h), Some(base + 7 * h - 1000)),
        (Some(base + 3 * h + 5 * m), Some(base + 3 * h + 40 * m)),
        (Some(base + 20 * h + 1000), Some(base + 50 * h)),
        (Some(base), Some(base + 24 * h - 1000)),
        (Some(base + 23 * h + 59 * m), Some(base + 24 * h + m)),
        (None, Some(base + 30 * h + 30 * m)),
        (Some(base + 45 * h + 10 * m), None),
        (Some(base - 5 * h), Some(base - h)),
    ];
    // (q filter, SQL condition)
    let filters = [
        ("", "TRUE"),
        ("operation=pull", "operation = 'pull'"),
        ("resource_type=artifact", "resource_type = 'artifact'"),
        ("operation={create delete}", "operation IN ('create', 'delete')"),
        ("resource_type=user,operation=login", "resource_type = 'user' AND operation = 'login'"),
        ("operation=~LO", "LOWER(operation) LIKE '%lo%'"),
    ];
    let model = |rows: &[(i64, &str, &str)], from: Option<i64>, to: Option<i64>| {
        rows.iter().filter(|(at, _, _)| from.is_none_or(|f| *at >= f) && to.is_none_or(|x| *at <= x)).count() as i64
    };
    let check_all = |rows: Vec<(i64, &'static str, &'static str)>| {
        let (t, ranges) = (&t, ranges.clone());
        async move {
            for (from, to) in &ranges {
                for (filter, cond) in filters {
                    let mut parts: Vec<String> = if filter.is_empty() { vec![] } else { vec![filter.to_string()] };
                    let mut conds = vec![cond.to_string()];
                    if from.is_some() || to.is_some() {
                        parts.push(format!("op_time=[{}~{}]", from.map(fmt).unwrap_or_default(), to.map(fmt).unwrap_or_default()));
                    }
                    // The range bounds are whole seconds in q.
                    if let Some(f) = from {
                        conds.push(format!("op_time >= {}", f / 1000 * 1000));
                    }
                    if let Some(x) = to {
                        conds.push(format!("op_time <= {}", x / 1000 * 1000));
                    }
                    let want = sql_count(t, &conds.join(" AND ")).await;
                    if filter.is_empty() && from.is_some() && to.is_some() {
                        // The direct count agrees with the records written.
                        assert_eq!(want, model(&rows, from.map(|v| v / 1000 * 1000), to.map(|v| v / 1000 * 1000)), "{parts:?}");
                    }
                    let joined = parts.join(",");
                    assert_totals(t, (EXTS, "/auditlog-exts"), (LOGS, "/audit-logs"), &joined, want).await;
                }
            }
        }
    };
    check_all(rows.clone()).await;
    // One whole UTC hour holds the records written in it, some of each kind.
    let r =
        list(&t, EXTS, &format!("/auditlog-exts?q={}", q(&format!("op_time=[{}~{}]", fmt(base + h), fmt(base + 2 * h - 1000))),), ADMIN)
            .await;
    assert_eq!(r.total(), model(&rows, Some(base + h), Some(base + 2 * h - 1)));
    assert!(r.total() >= 5);
    // Delete some, move some to the next hour (some across midnight), change some operations.
    sql_exec(&t, &format!("DELETE FROM audit_log WHERE resource LIKE 'thing1%' AND op_time < {}", base + 60 * h)).await;
    sql_exec(
        &t,
        &format!("UPDATE audit_log SET op_time = op_time + 5400000 WHERE resource LIKE 'thing2%' AND op_time < {}", base + 60 * h),
    )
    .await;
    sql_exec(&t, "UPDATE audit_log SET operation = 'delete' WHERE resource LIKE 'thing3%' AND operation = 'pull'").await;
    sql_exec(&t, "UPDATE audit_log SET resource_type = 'repository' WHERE resource LIKE 'thing4%' AND resource_type = 'artifact'").await;
    let changed: Vec<(i64, &str, &str)> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| !i.to_string().starts_with('1'))
        .map(|(i, (at, k, o))| (if i.to_string().starts_with('2') { at + 5_400_000 } else { *at }, *k, *o))
        .collect();
    check_all(changed).await;
    t.shutdown().await;
}

/// System admins see everything; project admins their projects; others nothing; the project
/// lists answer 403 to members without the permission and 404 to those who may not read it.
async fn permissions(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["pa", "dev", "out"]).await;
    for (name, public) in [("team", false), ("other", false), ("open", true)] {
        let r = api(
            &t,
            "POST",
            "/projects",
            "/projects",
            ADMIN,
            Some(json!({"project_name": name, "metadata": {"public": public.to_string()}})),
        )
        .await;
        assert_eq!(r.status, 201);
    }
    for (project, name, role) in [("team", "pa", 1), ("team", "dev", 2), ("open", "dev", 1)] {
        let r = api(
            &t,
            "POST",
            "/projects/{project_name_or_id}/members",
            &format!("/projects/{project}/members"),
            ADMIN,
            Some(json!({"role_id": role, "member_user": {"username": name}})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    for (template, suffix) in [(PROJECT_EXTS, "auditlog-exts"), (PROJECT_LOGS, "logs")] {
        let path = |p: &str| format!("/projects/{p}/{suffix}");
        let status = |r: Resp| r.status;
        assert_eq!(status(list(&t, template, &path("team"), ADMIN).await), 200);
        let r = list(&t, template, &path("team"), as_user("pa")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.total(), 3, "{}", r.text);
        assert_eq!(status(list(&t, template, &path("team"), as_user("dev")).await), 403);
        assert_eq!(status(list(&t, template, &path("team"), as_user("out")).await), 404);
        // Anonymous callers cannot see a private project at all.
        assert_eq!(status(list(&t, template, &path("team"), None).await), 404);
        assert_eq!(status(list(&t, template, &path("other"), as_user("pa")).await), 404);
        assert_eq!(status(list(&t, template, &path("nope"), as_user("pa")).await), 404);
        assert_eq!(status(list(&t, template, &path("nope"), ADMIN).await), 404);
        // A public project: readable, but its log is not.
        assert_eq!(status(list(&t, template, &path("open"), as_user("out")).await), 403);
        assert_eq!(status(list(&t, template, &path("open"), None).await), 401);
        assert_eq!(status(list(&t, template, &path("open"), as_user("dev")).await), 200);
        // A wrong password is 401, not a view as anonymous.
        assert_eq!(status(list(&t, template, &path("team"), Some(("pa", "Wrong-Passw0rd"))).await), 401);
    }
    // The global lists: everything for the admin; a user sees the projects it administers.
    for (template, path) in [(EXTS, "/auditlog-exts?page_size=100"), (LOGS, "/audit-logs?page_size=100")] {
        let all = list(&t, template, path, ADMIN).await;
        assert_eq!(all.status, 200);
        let r = list(&t, template, path, as_user("pa")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.total(), 3, "{}", r.text);
        assert!(r.items().iter().all(|v| ["team", "pa", "dev"].contains(&field(v, "resource"))), "{}", r.text);
        assert!(all.total() > 5);
        // dev administers the public project open (and is a developer in team).
        let r = list(&t, template, path, as_user("dev")).await;
        let seen: Vec<&str> = r.items().iter().map(|v| field(v, "resource")).collect();
        assert_eq!(seen, ["dev", "open"], "{}", r.text);
        assert_eq!(r.total(), 2);
        let r = list(&t, template, path, as_user("out")).await;
        assert_eq!((r.status, r.total(), r.items().len()), (200, 0, 0));
        assert_eq!(list(&t, template, path, None).await.status, 401);
    }
    // A project filter cannot widen what a caller sees.
    let r = list(&t, EXTS, &format!("/auditlog-exts?q={}", q("resource=other")), as_user("pa")).await;
    assert_eq!(r.total(), 0);
    let r = list(&t, EXTS, &format!("/auditlog-exts?q={}", q("resource=other")), ADMIN).await;
    assert_eq!(r.total(), 1);

    // Event types: system admins only.
    let r = list(&t, "/auditlog-exts/events", "/auditlog-exts/events", ADMIN).await;
    assert_eq!(r.status, 200);
    let kinds: Vec<&str> = r.items().iter().map(|v| field(v, "event_type")).collect();
    assert_eq!(kinds.len(), 18);
    for k in ["create_artifact", "pull_artifact", "login_user", "create_project", "update_member"] {
        assert!(kinds.contains(&k), "{k}");
    }
    assert_eq!(list(&t, "/auditlog-exts/events", "/auditlog-exts/events", as_user("pa")).await.status, 403);
    assert_eq!(list(&t, "/auditlog-exts/events", "/auditlog-exts/events", None).await.status, 401);
    t.shutdown().await;
}

/// Wrong passwords on the token service, on /v2 and on the API are recorded as failed
/// logins (Harbor's login_user event), with the client's address, never with the password.
async fn failed_logins(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["kim"]).await;
    let secret = "Sekrit-Wr0ng-Passw0rd";
    let ua = [("user-agent", "docker/27.0"), ("x-forwarded-for", "198.51.100.9")];
    let mut r = t.http.get(format!("{}/service/token?service=harbor-registry", t.url)).basic_auth("kim", Some(secret));
    for (k, v) in ua {
        r = r.header(k, v);
    }
    assert_eq!(r.send().await.unwrap().status(), 401);
    let r = t
        .http
        .get(format!("{}/v2/", t.url))
        .basic_auth("kim", Some(secret))
        .header("x-forwarded-for", "198.51.100.10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = call_with(&t, "GET", "/api/v2.0/users/current", Some(("kim", secret)), None, &[("x-forwarded-for", "198.51.100.11")]).await;
    assert_eq!(r.status, 401);
    // A user that does not exist, and a robot with a wrong secret.
    let r = call(&t, "GET", "/api/v2.0/users/current", Some(("ghost", secret)), None).await;
    assert_eq!(r.status, 401);
    let r = call(&t, "GET", "/api/v2.0/users/current", Some(("robot$team+ci", secret)), None).await;
    assert_eq!(r.status, 401);
    // The right password is not recorded.
    let r = call(&t, "GET", "/api/v2.0/users/current", as_user("kim"), None).await;
    assert_eq!(r.status, 200);

    let r = list(&t, EXTS, &format!("/auditlog-exts?q={}", q("operation=login")), ADMIN).await;
    assert_eq!(r.total(), 5, "{}", r.text);
    let seen: Vec<(&str, &str, &str, bool, &str)> = r
        .items()
        .iter()
        .map(|v| {
            (
                field(v, "username"),
                field(v, "resource"),
                field(v, "resource_type"),
                v["operation_result"].as_bool().unwrap(),
                field(v, "operation_description"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("robot$team+ci", "robot$team+ci", "user", false, "login"),
            ("ghost", "ghost", "user", false, "login"),
            ("kim", "kim", "user", false, "login"),
            ("kim", "kim", "user", false, "login"),
            ("kim", "kim", "user", false, "login"),
        ]
    );
    let r = list(&t, EXTS, &format!("/auditlog-exts?q={}", q("username=kim,resource_type=user,operation=login")), ADMIN).await;
    assert_eq!(r.total(), 3);
    // Addresses and user agent in the table; the password nowhere.
    let rows = sql_rows(&t).await;
    let logins: Vec<(&str, &str)> = rows.iter().filter(|r| r.3 == "login" && r.0 == "kim").map(|r| (r.5.as_str(), r.6.as_str())).collect();
    assert_eq!(logins[0], ("198.51.100.9", "docker/27.0"));
    assert_eq!(logins[1].0, "198.51.100.10");
    assert_eq!(logins[2].0, "198.51.100.11");
    for r in &rows {
        let text = format!("{r:?}");
        assert!(!text.contains(secret) && !text.contains("Wr0ng"), "a password reached the audit log: {text}");
    }
    t.shutdown().await;
}

on_both_backends! {
    records_and_filters => records_and_filters;
    totals_across_days => totals_across_days;
    totals_by_hour => totals_by_hour;
    permissions => permissions;
    failed_logins => failed_logins;
}
