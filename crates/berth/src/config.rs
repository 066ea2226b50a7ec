//! Configuration: built-in defaults < TOML file < `BERTH_*` environment < command-line flags.
//!
//! Every option is a flag of `berth serve` with its environment variable (clap
//! reads both, flags winning) and a key of the TOML file named by `--config`.

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "berth", version, about = "Berth: a container registry with Harbor's API, in one binary")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the registry (OCI Distribution API on /v2, token service on /service/token).
    Serve(ServeArgs),
}

/// Options of `berth serve`. Unset options fall back to the TOML file, then to defaults.
#[derive(Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// TOML configuration file; its keys are the long option names with `_` for `-`.
    #[arg(long, env = "BERTH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 0.0.0.0:5000].
    #[arg(long, env = "BERTH_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory: blobs (filesystem storage), token keys, the SQLite database [default: ./data].
    #[arg(long, env = "BERTH_DATA")]
    pub data: Option<PathBuf>,
    /// Metadata database URL: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://<data>/berth.db].
    #[arg(long, env = "BERTH_DATABASE")]
    pub database: Option<String>,
    /// Blob storage backend: fs or s3 [default: fs].
    #[arg(long, env = "BERTH_STORAGE")]
    pub storage: Option<String>,
    /// Root directory of fs storage [default: <data>/storage].
    #[arg(long, env = "BERTH_STORAGE_ROOT")]
    pub storage_root: Option<PathBuf>,
    /// S3 bucket (storage = s3).
    #[arg(long, env = "BERTH_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// S3 endpoint URL (storage = s3).
    #[arg(long, env = "BERTH_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region (storage = s3) [default: us-east-1].
    #[arg(long, env = "BERTH_S3_REGION")]
    pub s3_region: Option<String>,
    /// S3 access key id (storage = s3).
    #[arg(long, env = "BERTH_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key (storage = s3).
    #[arg(long, env = "BERTH_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// Public base URL of the registry, used in token realms and Location headers
    /// [default: taken from each request, honouring X-Forwarded-Proto/Host].
    #[arg(long, env = "BERTH_EXTERNAL_URL")]
    pub external_url: Option<String>,
    /// Service name in token challenges and tokens [default: harbor-registry].
    #[arg(long, env = "BERTH_TOKEN_SERVICE")]
    pub token_service: Option<String>,
    /// Lifetime of issued registry tokens, in seconds [default: 1800].
    #[arg(long, env = "BERTH_TOKEN_EXPIRY")]
    pub token_expiry: Option<u64>,
    /// Abandoned upload sessions expire after this many seconds [default: 86400].
    #[arg(long, env = "BERTH_UPLOAD_EXPIRY")]
    pub upload_expiry: Option<u64>,
    /// Upload sessions in progress (with a stored chunk) allowed per account and per client
    /// address; 0: no bound [default: 1000].
    #[arg(long, env = "BERTH_UPLOAD_MAX_SESSIONS")]
    pub upload_max_sessions: Option<u64>,
    /// Bytes held by upload sessions in progress allowed per account and per client address;
    /// 0: no bound [default: 68719476736 (64 GiB)].
    #[arg(long, env = "BERTH_UPLOAD_MAX_BYTES")]
    pub upload_max_bytes: Option<u64>,
    /// Most blobs and manifests one manifest may reference [default: 10000].
    #[arg(long, env = "BERTH_MANIFEST_MAX_REFERENCES")]
    pub manifest_max_references: Option<usize>,
    /// Password of the `admin` account created on first start [default: generated and printed once].
    #[arg(long, env = "BERTH_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Seconds to wait for requests in flight on shutdown [default: 30].
    #[arg(long, env = "BERTH_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<u64>,
    /// Prefix of robot account names [default: robot$].
    #[arg(long, env = "BERTH_ROBOT_PREFIX")]
    pub robot_prefix: Option<String>,
    /// Log filter, in RUST_LOG syntax [default: info].
    #[arg(long, env = "BERTH_LOG")]
    pub log: Option<String>,
    /// Bearer token that lets a scraper read GET /metrics (system admins may always read it)
    /// [default: none].
    #[arg(long, env = "BERTH_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Seconds a client has to send a request's whole header, from connecting or from the
    /// header's first byte [default: 10].
    #[arg(long, env = "BERTH_HEADER_TIMEOUT")]
    pub header_timeout: Option<u64>,
    /// Seconds a kept-alive connection may wait for its next request [default: 60].
    #[arg(long, env = "BERTH_IDLE_TIMEOUT")]
    pub idle_timeout: Option<u64>,
    /// Seconds a request body may send nothing, or a client may read nothing of a response,
    /// before the request fails and the connection closes [default: 60].
    #[arg(long, env = "BERTH_BODY_TIMEOUT")]
    pub body_timeout: Option<u64>,
    /// Open connections in all [default: 10000, at most the descriptor limit less 128].
    #[arg(long, env = "BERTH_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open connections from one client address [default: 512].
    #[arg(long, env = "BERTH_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Addresses or CIDR ranges whose X-Forwarded-For/-Host/-Proto are honoured, comma-separated
    /// [default: 127.0.0.0/8,::1].
    #[arg(long, env = "BERTH_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
}

/// The TOML file's shape: every key optional.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    database: Option<String>,
    storage: Option<String>,
    storage_root: Option<PathBuf>,
    s3_bucket: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<String>,
    external_url: Option<String>,
    token_service: Option<String>,
    token_expiry: Option<u64>,
    upload_expiry: Option<u64>,
    upload_max_sessions: Option<u64>,
    upload_max_bytes: Option<u64>,
    manifest_max_references: Option<usize>,
    admin_password: Option<String>,
    shutdown_grace: Option<u64>,
    robot_prefix: Option<String>,
    log: Option<String>,
    metrics_token: Option<String>,
    header_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    body_timeout: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    trusted_proxies: Option<Vec<String>>,
}

/// Where blobs are kept.
#[derive(Clone, Debug)]
pub enum Storage {
    Fs { root: PathBuf },
    S3 { bucket: String, endpoint: Option<String>, region: String, access_key_id: Option<String>, secret_access_key: Option<String> },
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub database: String,
    pub storage: Storage,
    pub external_url: Option<String>,
    pub token_service: String,
    pub token_expiry: u64,
    pub upload_expiry: u64,
    /// Upload sessions in progress per account and per client address (0: unbounded).
    pub upload_max_sessions: u64,
    /// Bytes of upload sessions in progress per account and per client address (0: unbounded).
    pub upload_max_bytes: u64,
    /// Most references (blobs and child manifests) in one manifest.
    pub manifest_max_references: usize,
    pub admin_password: Option<String>,
    pub shutdown_grace: u64,
    pub robot_prefix: String,
    pub log: String,
    /// Bearer token for `GET /metrics` (None: only system admins may read it).
    pub metrics_token: Option<String>,
    /// Connection timeouts and caps (`http::serve`).
    pub connections: Connections,
    /// Peers whose `X-Forwarded-*` headers are honoured.
    pub trusted_proxies: Vec<Cidr>,
}

/// Timeouts and caps of the server's connections.
#[derive(Clone, Debug)]
pub struct Connections {
    pub header_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    pub body_timeout: std::time::Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
}

impl Default for Connections {
    fn default() -> Connections {
        let secs = std::time::Duration::from_secs;
        Connections {
            header_timeout: secs(10),
            idle_timeout: secs(60),
            body_timeout: secs(60),
            max_connections: 10_000,
            max_connections_per_ip: 512,
        }
    }
}

/// An address range: `10.0.0.0/8`, `::1`, `192.0.2.7`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("{s:?} is not an address or address/prefix");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a.parse::<std::net::IpAddr>().map_err(|_| bad())?, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s.trim().parse::<std::net::IpAddr>().map_err(|_| bad())?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }

    /// Loopback only: `127.0.0.0/8` and `::1`.
    pub fn loopback() -> Vec<Cidr> {
        vec![Cidr::parse("127.0.0.0/8").expect("literal"), Cidr::parse("::1").expect("literal")]
    }

    /// Whether `ip` (an IPv4-mapped IPv6 address counts as IPv4) is in the range.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let bits = |n: u32, width: u32| if n == 0 { 0 } else { u128::MAX << (width - n) };
        match (self.addr, ip.to_canonical()) {
            (V4(a), V4(b)) => {
                let m = bits(self.prefix.into(), 32) as u32;
                u32::from(a) & m == u32::from(b) & m
            }
            (V6(a), V6(b)) => {
                let m = bits(self.prefix.into(), 128);
                u128::from(a) & m == u128::from(b) & m
            }
            _ => false,
        }
    }
}

impl Config {
    /// Resolves flags and environment (already merged by clap) over the TOML file over defaults.
    pub fn load(args: &ServeArgs) -> Result<Config, String> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str::<FileConfig>(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let a = args.clone();
        let data = a.data.or(file.data).unwrap_or_else(|| PathBuf::from("./data"));
        let database = a.database.or(file.database).unwrap_or_else(|| format!("sqlite://{}", data.join("berth.db").display()));
        let storage = match a.storage.or(file.storage).as_deref().unwrap_or("fs") {
            "fs" => Storage::Fs { root: a.storage_root.or(file.storage_root).unwrap_or_else(|| data.join("storage")) },
            "s3" => Storage::S3 {
                bucket: a.s3_bucket.or(file.s3_bucket).ok_or("storage = s3 needs s3_bucket")?,
                endpoint: a.s3_endpoint.or(file.s3_endpoint),
                region: a.s3_region.or(file.s3_region).unwrap_or_else(|| "us-east-1".into()),
                access_key_id: a.s3_access_key_id.or(file.s3_access_key_id),
                secret_access_key: a.s3_secret_access_key.or(file.s3_secret_access_key),
            },
            other => return Err(format!("unknown storage backend {other:?}; use fs or s3")),
        };
        let external_url = a.external_url.or(file.external_url).map(|u| u.trim_end_matches('/').to_string());
        Ok(Config {
            listen: a.listen.or(file.listen).unwrap_or_else(|| "0.0.0.0:5000".parse().expect("literal address")),
            data,
            database,
            storage,
            external_url,
            token_service: a.token_service.or(file.token_service).unwrap_or_else(|| "harbor-registry".into()),
            token_expiry: a.token_expiry.or(file.token_expiry).unwrap_or(1800),
            upload_expiry: a.upload_expiry.or(file.upload_expiry).unwrap_or(86_400),
            upload_max_sessions: a.upload_max_sessions.or(file.upload_max_sessions).unwrap_or(1000),
            upload_max_bytes: a.upload_max_bytes.or(file.upload_max_bytes).unwrap_or(64 << 30),
            manifest_max_references: a.manifest_max_references.or(file.manifest_max_references).unwrap_or(10_000),
            admin_password: a.admin_password.or(file.admin_password),
            shutdown_grace: a.shutdown_grace.or(file.shutdown_grace).unwrap_or(30),
            robot_prefix: a.robot_prefix.or(file.robot_prefix).unwrap_or_else(|| "robot$".into()),
            log: a.log.or(file.log).unwrap_or_else(|| "info".into()),
            metrics_token: a.metrics_token.or(file.metrics_token).filter(|t| !t.is_empty()),
            connections: {
                let d = Connections::default();
                let secs = |v: Option<u64>, default: std::time::Duration| v.map_or(default, std::time::Duration::from_secs);
                Connections {
                    header_timeout: secs(a.header_timeout.or(file.header_timeout), d.header_timeout),
                    idle_timeout: secs(a.idle_timeout.or(file.idle_timeout), d.idle_timeout),
                    body_timeout: secs(a.body_timeout.or(file.body_timeout), d.body_timeout),
                    max_connections: a.max_connections.or(file.max_connections).unwrap_or(d.max_connections),
                    max_connections_per_ip: a.max_connections_per_ip.or(file.max_connections_per_ip).unwrap_or(d.max_connections_per_ip),
                }
            },
            trusted_proxies: match a.trusted_proxies.or(file.trusted_proxies) {
                Some(list) => list.iter().filter(|s| !s.trim().is_empty()).map(|s| Cidr::parse(s)).collect::<Result<_, _>>()?,
                None => Cidr::loopback(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_is_overridden_by_flags_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:6000\"\ndata = \"/srv/berth\"\ntoken_expiry = 60\n").unwrap();
        let args = ServeArgs { config: Some(path.clone()), token_expiry: Some(90), ..Default::default() };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:6000");
        assert_eq!(c.token_expiry, 90);
        assert_eq!(c.database, "sqlite:///srv/berth/berth.db");
        assert!(matches!(c.storage, Storage::Fs { ref root } if root == std::path::Path::new("/srv/berth/storage")));
        assert_eq!(c.token_service, "harbor-registry");
        assert_eq!(c.connections.header_timeout, std::time::Duration::from_secs(10));
        assert_eq!(c.trusted_proxies, Cidr::loopback());
        std::fs::write(&path, "colour = 1\n").unwrap();
        assert!(Config::load(&args).unwrap_err().contains("colour"));
    }

    #[test]
    fn trusted_proxy_ranges() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")) && !net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped peers count as IPv4");
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("203.0.113.1")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")) && !Cidr::parse("::1").unwrap().contains(ip("::2")));
        assert!(Cidr::parse("10.0.0.0/33").is_err() && Cidr::parse("example.org").is_err());
        let args = ServeArgs { trusted_proxies: Some(vec!["192.0.2.7".into(), "2001:db8::/32".into()]), ..Default::default() };
        let c = Config::load(&args).unwrap();
        assert!(c.trusted_proxies[0].contains(ip("192.0.2.7")) && !c.trusted_proxies[0].contains(ip("127.0.0.1")));
    }
}
