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
        std::fs::write(&path, "colour = 1\n").unwrap();
        assert!(Config::load(&args).unwrap_err().contains("colour"));
    }
}
