//! Berth: a container registry that speaks the OCI Distribution Spec and
//! Harbor's API, in one binary.
//!
//! Layers, dependencies flowing one way: `http` → `domain` → {`meta`, `blob`, `auth`}.
//! `oci` (a separate crate) holds the pure protocol types.

pub mod app;
pub mod auth;
pub mod blob;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod meta;
pub mod metrics;
pub mod telemetry;
pub mod text;
pub mod time_fmt;

use crate::app::App;
use crate::config::Config;
use std::sync::Arc;
use std::time::Duration;

/// Opens the stores, bootstraps an empty database, and builds the shared state.
pub async fn build(config: Config) -> Result<Arc<App>, error::Error> {
    std::fs::create_dir_all(&config.data)
        .map_err(|e| error::Error::Internal(format!("cannot create data directory {}: {e}", config.data.display())))?;
    let meta = meta::Meta::connect(&config.database).await?;
    let blobs = blob::BlobStore::open(&config.storage)?;
    if meta.user_count().await? == 0 {
        let (password, generated) = match &config.admin_password {
            Some(p) => (p.clone(), false),
            None => (auth::random_secret(18)?, true),
        };
        let hash = auth::hash_password(&password).await?;
        if meta.bootstrap(&hash).await? && generated {
            // Written once to standard output, outside the log pipeline (never to a log line).
            println!("berth: created user 'admin' with generated password: {password}");
            println!("berth: this password is shown only once; change it after logging in.");
        }
    }
    let key = meta.signing_key().await?;
    let upload_key = domain::uploads::derive_key(&key);
    let tokens = auth::token::TokenKeys::new(&key, &config.token_service, config.token_expiry);
    let auth = auth::Auth::new(tokens)?;
    Ok(Arc::new(App { config, meta, blobs, auth, hashers: Default::default(), upload_key, pulls: Default::default() }))
}

/// Runs the server until SIGTERM or SIGINT, then drains requests in flight.
pub async fn serve(config: Config) -> Result<(), error::Error> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| error::Error::Internal(format!("cannot listen on {}: {e}", config.listen)))?;
    let app = build(config).await?;
    run(app, listener, shutdown_signal()).await
}

/// Serves `app` on `listener` until `stop` resolves.
pub async fn run(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), error::Error> {
    let addr = listener.local_addr().map_err(error::Error::internal)?;
    tracing::info!(%addr, "berth listening");
    let sweeper = tokio::spawn(domain::uploads::sweep_forever(app.clone()));
    let (stop_pulls, pulls_stop) = tokio::sync::watch::channel(false);
    let pull_writer = tokio::spawn(domain::pulls::flush_forever(app.clone(), pulls_stop));
    let grace = Duration::from_secs(app.config.shutdown_grace);
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let router = http::router(app.clone());
    let limits = app.config.connections.clone();
    let server = http::server::serve(listener, router, limits, app.config.trusted_proxies.clone(), async move {
        stop.await;
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stopped_tx.send(());
    });
    let drained = async {
        let _ = stopped_rx.await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = server => r.map_err(error::Error::internal)?,
        _ = drained => tracing::warn!("grace period over: abandoning requests still in flight"),
    }
    sweeper.abort();
    // Not aborted: a write in progress finishes, then the rest is written below.
    let _ = stop_pulls.send(true);
    let _ = pull_writer.await;
    if let Err(e) = domain::pulls::flush(&app).await {
        tracing::error!(error = %e, "writing the last pull counts failed");
    }
    app.meta.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
