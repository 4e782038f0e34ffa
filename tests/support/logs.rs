//! Every log line of a test binary, captured in-process as JSON for assertions.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::{within, WAIT};

fn sink() -> &'static Mutex<Vec<u8>> {
    static LINES: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LINES.get_or_init(|| {
        struct Sink;
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                sink().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_env_filter("info")
            .with_writer(|| Sink)
            .try_init();
        Mutex::new(Vec::new())
    })
}

/// Starts capturing (call before the proxy logs anything the test looks for).
pub fn capture() {
    let _ = sink();
}

/// Every captured line, parsed.
pub fn lines() -> Vec<serde_json::Value> {
    let bytes = sink().lock().unwrap().clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits for the one line that `matches`, and returns it.
pub async fn one_line(
    what: &str,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    within(WAIT, what, async {
        loop {
            let found: Vec<_> = lines().into_iter().filter(|l| matches(l)).collect();
            if let [line] = found.as_slice() {
                return line.clone();
            }
            assert!(found.len() < 2, "{what}: more than one line: {found:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// The access line of the request with `X-Request-Id: request_id`.
pub async fn access_line(request_id: &str) -> serde_json::Value {
    one_line("the access line", |l| {
        l["target"] == "access" && l["request_id"] == request_id
    })
    .await
}
