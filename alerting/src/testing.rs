//! Test fixtures shared by this crate's tests and the root binary's end-to-end tests (cargo
//! feature `testing`, like quickwit's `testsuite`): a webhook receiver on 127.0.0.1 that records
//! every request, answers with scripted statuses, and can play dead.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use parking_lot::Mutex;
use serde_json::Value;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// Request path (`/hook`, `/api/v2/alerts`, …).
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// The body as sent.
    pub body: Bytes,
    /// The status the receiver answered with.
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone)]
struct ReceiverState {
    requests: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer with, in order; `default_status` once exhausted.
    script: Arc<Mutex<VecDeque<u16>>>,
    default_status: u16,
}

/// A webhook receiver: records every request on any path; stops the server when dropped.
pub struct WebhookReceiver {
    /// Where it listens.
    pub addr: SocketAddr,
    state: ReceiverState,
    down: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    /// Listens on a free loopback port, answering with `script`'s statuses in order, then
    /// `default_status`.
    pub async fn start(script: &[u16], default_status: u16) -> Self {
        Self::start_on("127.0.0.1:0", script, default_status).await
    }

    /// Listens on `addr` (e.g. a port chosen before the server under test started).
    pub async fn start_on(addr: &str, script: &[u16], default_status: u16) -> Self {
        let state = ReceiverState {
            requests: Default::default(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            default_status,
        };
        let down = Arc::new(AtomicBool::new(false));
        let Ok(inner) = tokio::net::TcpListener::bind(addr).await else {
            panic!("cannot bind the test webhook receiver to {addr}");
        };
        let listener = SwitchableListener {
            inner,
            down: down.clone(),
        };
        let Ok(addr) = listener.inner.local_addr() else {
            panic!("the test webhook receiver has no address");
        };
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WebhookReceiver {
            addr,
            state,
            down,
            server,
        }
    }

    /// A receiver that is down: it closes every connection without answering, until
    /// `set_down(false)`.
    pub async fn start_down() -> Self {
        let receiver = Self::start(&[], 200).await;
        receiver.set_down(true);
        receiver
    }

    /// Takes the receiver down (connections closed unanswered) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.state.requests.lock().clone()
    }

    /// Requests answered with 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A listener that drops connections unanswered while `down` (a receiver that is down, without
/// releasing the port to other tests running in parallel).
struct SwitchableListener {
    inner: tokio::net::TcpListener,
    down: Arc<AtomicBool>,
}

impl axum::serve::Listener for SwitchableListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok((stream, addr)) = self.inner.accept().await
                && !self.down.load(Ordering::SeqCst)
            {
                return (stream, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

async fn record(
    State(state): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = state
        .script
        .lock()
        .pop_front()
        .unwrap_or(state.default_status);
    state.requests.lock().push(Received {
        path: uri.path().to_string(),
        headers,
        body,
        status,
        at: Instant::now(),
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
