//! `coffer init`, `coffer serve` and `coffer demo`: the data root and the HTTP service
//! (runtime, listener, logs, graceful shutdown).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{Global, load_config, open, print_json};
use crate::coffer::Coffer;
use crate::http::tls::Certificates;

pub fn init(g: &Global) -> anyhow::Result<()> {
    let (coffer, created) = Coffer::init(&g.data_dir, load_config(g)?)?;
    let path = coffer.data_root_path().display().to_string();
    if g.json {
        print_json(&serde_json::json!({ "data_root": path, "created": created }))?;
    } else if created {
        println!("initialised data root {path}");
    } else {
        println!("data root {path} already initialised");
    }
    Ok(())
}

pub fn serve_command(g: &Global, listen: Option<String>) -> anyhow::Result<()> {
    let coffer = open(g)?;
    let listen = listen.unwrap_or_else(|| coffer.config().listen.clone());
    serve(coffer, &listen, None)
}

pub fn demo(g: &Global, listen: Option<String>, fixtures: Option<PathBuf>) -> anyhow::Result<()> {
    let fixtures = fixtures.unwrap_or_else(default_fixtures);
    let demo = crate::demo::load(&fixtures)?;
    let fresh = !g.data_dir.join("COFFER").exists();
    let (coffer, _) = Coffer::init(&g.data_dir, load_config(g)?)?;
    if fresh {
        crate::demo::seed(&coffer, &demo, &fixtures)?;
    } else if !crate::demo::seeded(&coffer, &demo)? {
        bail!(
            "{} already holds a data root that is not a demo; pass --data-dir with a new directory",
            g.data_dir.display()
        );
    }
    let listen = listen.unwrap_or_else(|| coffer.config().listen.clone());
    serve(coffer, &listen, Some(crate::demo::logins(&demo)))
}

/// The repository's `fixtures/` (for `cargo run -- demo`), else `./fixtures`.
fn default_fixtures() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    if repo.join("demo.json").is_file() {
        repo
    } else {
        PathBuf::from("fixtures")
    }
}

/// Starts logging and the runtime, binds, and serves until Ctrl-C or SIGTERM.
fn serve(coffer: Coffer, listen: &str, banner: Option<Vec<String>>) -> anyhow::Result<()> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        // SIGHUP's handler is in place before anyone learns we are up: tokio keeps a
        // signal's handler installed for the process's life once one listener was
        // made, so a reload sent right after the banner never ends the process.
        let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let tls = Certificates::from_config(coffer.config())?;
        let mut state = crate::http::AppState::new(coffer.clone())?;
        if let Some(certs) = &tls {
            state = state.with_tls();
            tracing::info!(fingerprint = %certs.fingerprint(), "TLS certificate loaded");
        }
        if let Some(metrics) = &coffer.config().metrics_listen {
            let listener = tokio::net::TcpListener::bind(metrics)
                .await
                .with_context(|| format!("cannot listen on {metrics} (metrics_listen)"))?;
            tracing::info!(addr = %listener.local_addr()?, "serving /metrics");
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::http::serve_metrics(state, listener).await {
                    tracing::error!(error = %e, "the metrics address stopped");
                }
            });
        }
        // Where the other nodes pull this node's tenants from when one moves away.
        if let Some(url) = &coffer.config().node_url {
            coffer.control().register_node(url)?;
            tracing::info!(node_url = %url, "registered this node's address");
        }
        coffer.spawn_lifecycle_scheduler();
        let meter = state.meter().clone();
        meter.spawn_flusher(coffer.clone());
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!(
            "Coffer is serving on {scheme}://{addr}/ (API reference: {scheme}://{addr}/api/v1/docs/)"
        );
        if let Some(lines) = banner {
            println!("Demo logins:");
            for line in lines {
                println!("{line}");
            }
        }
        tracing::info!(%addr, "listening");
        crate::http::serve(state, listener, tls, shutdown_signal()).await?;
        // The last counts since the previous flush: a deploy or a SIGTERM loses none.
        match tokio::task::spawn_blocking(move || meter.flush(&coffer)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the last usage counts were not written"),
            Err(e) => tracing::warn!(error = %e, "the last usage flush panicked"),
        }
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Structured logs to standard error; `RUST_LOG` filters, `COFFER_LOG_FORMAT=json` for
/// JSON lines.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info"));
    // Colour only for a person at a terminal, never into a journal or a file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if std::env::var("COFFER_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
