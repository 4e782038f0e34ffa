//! The `auth-proxy` binary: parse flags, bind, print the address, run the library until a signal.

use std::process::ExitCode;

use std::net::SocketAddr;
use std::sync::Arc;

use auth_proxy::config::{parse_auth_url, AuthUrl, Cli, Command, LogFormat};
use auth_proxy::dev_auth::{self, DevAuth, DevAuthArgs};
use auth_proxy::rlimit;
use auth_proxy::{AppState, Config};
use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Invalid configuration: exit status 2 (as clap's usage errors), after exactly one stderr line.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help / --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return config_error(first_line(&e.to_string())),
    };
    // Held until exit: dropping it flushes the log lines still queued.
    let _log_flush = init_tracing(cli.log_format);
    // Before any descriptor is opened, as nginx's `worker_rlimit_nofile` and Go's runtime do.
    let nofile = rlimit::raise_nofile();
    // This thread's runtime is worker 0; `run` starts the others (`auth_proxy::workers`).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return config_error(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(run(cli, nofile))
}

async fn run(cli: Cli, nofile: rlimit::Raised) -> ExitCode {
    if let Some(Command::DevAuth { listen, args }) = &cli.command {
        return run_dev_auth(*listen, args).await;
    }
    let mut config = match Config::from_cli(&cli) {
        Ok(config) => config,
        Err(message) => return config_error(&message),
    };
    // `--dev`: the development auth service runs in-process on a free loopback port.
    let dev = if cli.dev {
        match start_dev_auth(&cli.dev_auth).await {
            Ok((url, stop, task)) => {
                config.auth_url = url;
                Some((stop, task))
            }
            Err(message) => return config_error(&message),
        }
    } else {
        None
    };
    let state = match AppState::new(config) {
        Ok(state) => state,
        Err(message) => return config_error(&message),
    };
    let workers = match cli.worker_threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        n => n,
    };
    // One listener alone needs no SO_REUSEPORT; several refuse a port already in use too.
    let bound = if workers == 1 {
        TcpListener::bind(cli.listen).await.map(|l| vec![l])
    } else {
        auth_proxy::workers::bind(cli.listen, workers)
    };
    let mut listeners = match bound {
        Ok(listeners) => listeners.into_iter(),
        Err(e) => {
            return config_error(&format!(
                "--listen/LISTEN_ADDR: cannot bind {}: {e}",
                cli.listen
            ))
        }
    };
    let Some(listener) = listeners.next() else {
        return config_error("--listen/LISTEN_ADDR: no listener bound");
    };
    let state = Arc::new(state);
    let metrics_at = match cli.metrics_listen {
        Some(addr) => match auth_proxy::metrics::start(addr, &state).await {
            Ok(bound) => Some(bound),
            Err(message) => return config_error(&message),
        },
        None => None,
    };
    // Only once the configuration is known to be valid: an invalid one gets exactly one line.
    let upstream = u64::from(state.config.upstream_max_connections);
    let max_connections = state.config.max_connections;
    nofile.warn_if_short(
        max_connections,
        upstream,
        rlimit::needed(max_connections, upstream, cli.dev, workers),
    );
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => return config_error(&format!("--listen/LISTEN_ADDR: {e}")),
    };
    // The other workers start serving only once nothing can fail any more.
    let mut others = Vec::with_capacity(listeners.len());
    for (index, listener) in (1..).zip(listeners) {
        match auth_proxy::workers::spawn(index, listener, state.for_worker()) {
            Ok(worker) => others.push(worker),
            Err(e) => return config_error(&format!("cannot start worker {index}: {e}")),
        }
    }
    eprintln!("auth-proxy listening on http://{addr}");
    if let Some(addr) = metrics_at {
        eprintln!("auth-proxy metrics at http://{addr}/metrics");
    }
    let mut served = auth_proxy::service::serve(listener, state, shutdown_signal()).await;
    for worker in others {
        let finished = worker.finished().await;
        served = served.and(finished);
    }
    if let Some((stop, task)) = dev {
        let _ = stop.send(());
        let _ = task.await;
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

type DevHandle = (
    AuthUrl,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
);

/// Starts the development auth service on `127.0.0.1:0` and returns its URL; it stops when told.
async fn start_dev_auth(args: &DevAuthArgs) -> Result<DevHandle, String> {
    let auth = DevAuth::try_new(args).map_err(|e| format!("--dev: {e}"))?;
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("--dev: cannot bind a loopback port: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("--dev: {e}"))?;
    eprintln!("dev auth service at http://{addr}");
    let url = parse_auth_url(&format!("http://{addr}"))?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(dev_auth::serve(listener, Arc::new(auth), async move {
        let _ = stopped.await;
    }));
    Ok((url, stop, task))
}

/// `auth-proxy dev-auth --listen ADDR`: the development auth service alone, until a signal.
async fn run_dev_auth(listen: SocketAddr, args: &DevAuthArgs) -> ExitCode {
    let auth = match DevAuth::try_new(args) {
        Ok(auth) => auth,
        Err(e) => return config_error(&format!("dev-auth: {e}")),
    };
    let listener = match TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => return config_error(&format!("--listen/LISTEN_ADDR: cannot bind {listen}: {e}")),
    };
    match listener.local_addr() {
        Ok(addr) => eprintln!("dev auth service at http://{addr}"),
        Err(e) => return config_error(&format!("--listen/LISTEN_ADDR: {e}")),
    }
    match dev_auth::serve(listener, Arc::new(auth), shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "dev auth service failed");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

/// Log lines queued for the writer thread; the queue is allocated up front, and 4096 lines
/// (~128 KiB) ride out bursts where the default 128k-line queue costs ~4 MiB resident.
const LOG_QUEUE_LINES: usize = 4096;

/// Log lines go to stderr through a writer thread: a slow log reader (a full pipe, a stalled
/// collector) must not block the runtime thread that serves requests. Past its queue
/// tracing-appender drops lines rather than stall the proxy.
fn init_tracing(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}

fn first_line(text: &str) -> &str {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or(text)
}

fn config_error(message: &str) -> ExitCode {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    eprintln!("auth-proxy: error: {message}");
    ExitCode::from(EXIT_CONFIG)
}
