//! The `odradek` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;

use odradek::app::{read_config, RunningBroker};
use odradek::config::LogFormat;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "odradek",
    version,
    about = "A message broker that speaks Apache Kafka's protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker.
    Serve {
        /// A Kafka server.properties file. Without it, Kafka's quickstart settings apply
        /// (127.0.0.1:9092, data under ./data).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Set one property, `key=value`, over the file's value. Repeatable.
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Add SCRAM users before a broker runs (as Kafka's `kafka-storage format --add-scram`):
    /// standalone into the data directory, in cluster mode into ZooKeeper.
    AddScram {
        /// The broker's server.properties (as for `serve`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Set one property, `key=value`, over the file's value. Repeatable.
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// `SCRAM-SHA-256=[name=alice,password=alice-secret]` (also `iterations=`, base64
        /// `salt=` and `saltedpassword=`). Repeatable.
        #[arg(required = true, value_name = "MECHANISM=[name=..,password=..]")]
        users: Vec<String>,
    },
    /// Ask a broker for its API versions; exit 0 when it answers validly (container health checks).
    Healthcheck {
        /// The broker's listener, `host:port`.
        #[arg(long, default_value = "127.0.0.1:9092")]
        bootstrap: String,
        /// Milliseconds allowed for the connection, and again for the answer.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole cause chain on one line, and in the log; no backtrace noise.
            tracing::error!("{e:#}");
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A file-size limit (ulimit -f) must surface as EFBIG, a storage error that fails the log
    // directory cleanly, not as a signal that kills the process (the JVM ignores it too).
    // SAFETY: setting a signal's disposition to ignored, before any thread exists.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    match cli.command {
        Command::Serve { config, overrides } => {
            // The configuration names the log format, so it is read before logging starts; a
            // configuration error is printed by `main` all the same.
            let (config, unknown) = read_config(config.as_deref(), &overrides)?;
            init_logging(config.log_format);
            for key in unknown {
                tracing::warn!(key, "unknown configuration key ignored");
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("odradek")
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(serve(config))
        }
        Command::Healthcheck {
            bootstrap,
            timeout_ms,
        } => healthcheck(&bootstrap, timeout_ms),
        Command::AddScram {
            config,
            overrides,
            users,
        } => add_scram(config.as_deref(), &overrides, &users),
    }
}

/// One ApiVersions round trip on a single-threaded runtime; prints what the broker advertised.
fn healthcheck(bootstrap: &str, timeout_ms: u64) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let timeout = std::time::Duration::from_millis(timeout_ms);
    let healthy = runtime.block_on(odradek::app::health::check(bootstrap, timeout))?;
    println!("{bootstrap}: healthy, {} APIs advertised", healthy.apis);
    Ok(())
}

/// Parses every `--add-scram`-style argument first, then stores them all at once.
fn add_scram(
    config: Option<&std::path::Path>,
    overrides: &[String],
    users: &[String],
) -> anyhow::Result<()> {
    use odradek::app::add_scram::{add_scram_users, ScramUser};
    let (config, _unknown) = read_config(config, overrides)?;
    init_logging(config.log_format);
    let users = users
        .iter()
        .map(|u| ScramUser::parse(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(add_scram_users(&config, &users))?;
    for u in &users {
        println!("added {} credential for user {}", u.mechanism, u.name);
    }
    Ok(())
}

/// Starts logging to stdout: `RUST_LOG` filters (default `info`); text lines are coloured only
/// when stdout is a terminal and `NO_COLOR` is unset or empty; `json` writes one object a line.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match format {
        LogFormat::Text => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            let ansi = std::io::stdout().is_terminal() && !no_color;
            builder.with_ansi(ansi).init();
        }
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

async fn serve(config: odradek::config::BrokerConfig) -> anyhow::Result<()> {
    let running = RunningBroker::start(config).await?;
    let dir_failure = running.dir_failure();
    tokio::select! {
        signal = wait_for_signal() => {
            signal?;
            running.shutdown().await
        }
        reason = dir_failure.failed() => Err(running.halt(&reason).await),
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
