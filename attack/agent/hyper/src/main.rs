//! idlerace's hyper agent: hyper 0.14's `Client` (the seed's), one per lane, driven over
//! stdin/stdout as docs/agent-protocol.md says. Its defaults are a user's
//! (`Client::builder()`: pool_idle_timeout 90 s, retry_canceled_requests true), unless
//! the kind's options (`hyper:pool_idle_timeout=4900ms`, ...) set them: they arrive as
//! `--pool-idle-timeout-ns N`, `--retry-canceled-requests true|false`,
//! `--pool-max-idle-per-host N`.
use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::client::HttpConnector;
use hyper::service::Service;
use hyper::{Body, Client, Method, Request, Uri};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

/// CLOCK_MONOTONIC in ns: the protocol's clock, shared with idlerace.
fn mono_ns() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64
}

/// What the lane's connector saw: how many connections it made, and the last one's
/// local port (a lane has one connection at a time).
#[derive(Default)]
struct ConnState {
    connects: u64,
    last_port: u16,
}

/// HttpConnector, counting: hyper does not say whether a request reused a pooled
/// connection, but a request that made no new connection did.
#[derive(Clone)]
struct Counting {
    inner: HttpConnector,
    state: Arc<Mutex<ConnState>>,
}

impl Service<Uri> for Counting {
    type Response = <HttpConnector as Service<Uri>>::Response;
    type Error = <HttpConnector as Service<Uri>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let fut = self.inner.call(uri);
        let state = self.state.clone();
        Box::pin(async move {
            let s = fut.await?;
            if let Ok(a) = s.local_addr() {
                let mut st = state.lock().unwrap();
                st.connects += 1;
                st.last_port = a.port();
            }
            Ok(s)
        })
    }
}

struct Lane {
    client: Client<Counting, Body>,
    state: Arc<Mutex<ConnState>>,
    // One request at a time on a lane, in the order sent.
    turn: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Clone, Default)]
struct Opts {
    hyper_version: String,
    pool_idle_timeout: Option<Duration>,
    retry_canceled_requests: Option<bool>,
    pool_max_idle_per_host: Option<usize>,
}

fn new_lane(o: &Opts) -> Lane {
    let state = Arc::new(Mutex::new(ConnState::default()));
    let conn = Counting { inner: HttpConnector::new(), state: state.clone() };
    let mut b = Client::builder();
    if let Some(d) = o.pool_idle_timeout {
        b.pool_idle_timeout(d);
    }
    if let Some(r) = o.retry_canceled_requests {
        b.retry_canceled_requests(r);
    }
    if let Some(n) = o.pool_max_idle_per_host {
        b.pool_max_idle_per_host(n);
    }
    Lane { client: b.build(conn), state, turn: Arc::new(tokio::sync::Mutex::new(())) }
}

fn out(v: Value) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{}", v);
    let _ = o.flush();
}

/// hyper's errors as idlerace's classes: IncompleteMessage ("connection closed before
/// message completed") and a canceled request (the pooled connection closed before it
/// was written, and no retry) are eof; an io error of the connection resets.
fn classify(e: &hyper::Error) -> &'static str {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionReset => "reset_read",
                std::io::ErrorKind::BrokenPipe => "reset_write",
                std::io::ErrorKind::TimedOut => "timeout",
                _ => "other",
            };
        }
        src = s.source();
    }
    if e.is_incomplete_message() || e.is_canceled() {
        return "eof";
    }
    if e.is_timeout() {
        return "timeout";
    }
    "other"
}

/// error text: hyper's own, with its sources.
fn error_text(e: &hyper::Error) -> String {
    let mut t = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        t.push_str(": ");
        t.push_str(&s.to_string());
        src = s.source();
    }
    t
}

async fn wait_until(at: i64) {
    // tokio's timer counts whole milliseconds: sleep to within 1.5 ms, then yield turns
    // until the instant (other lanes' tasks run in between).
    loop {
        let d = at - mono_ns();
        if d <= 0 {
            return;
        }
        if d > 2_000_000 {
            tokio::time::sleep(Duration::from_nanos((d - 1_500_000) as u64)).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

async fn send(lane: Arc<Lane>, m: Value) {
    let _turn = lane.turn.clone().lock_owned().await;
    let at: i64 = m["at_ns"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
    wait_until(at).await;
    let id = m["id"].clone();
    let lane_n = m["lane"].clone();
    let timeout_ns: u64 = m["timeout_ns"].as_str().and_then(|s| s.parse().ok()).unwrap_or(30_000_000_000);
    let method = Method::from_bytes(m["method"].as_str().unwrap_or("POST").as_bytes()).unwrap_or(Method::POST);
    let mut rb = Request::builder().method(method).uri(m["url"].as_str().unwrap_or(""));
    if let Some(h) = m["headers"].as_object() {
        for (k, v) in h {
            if let Some(v) = v.as_str() {
                rb = rb.header(k.as_str(), v);
            }
        }
    }
    let body = m["body"].as_str().unwrap_or("").to_string();
    let before = lane.state.lock().unwrap().connects;
    let start = mono_ns();
    let mut res = json!({"op": "result", "id": id, "lane": lane_n, "status": 0, "bytes_in": 0, "start_ns": start.to_string()});
    let req = match rb.body(Body::from(body)) {
        Ok(r) => r,
        Err(e) => {
            res["error"] = json!(e.to_string());
            res["class"] = json!("other");
            res["end_ns"] = json!(mono_ns().to_string());
            out(res);
            return;
        }
    };
    let r = tokio::time::timeout(Duration::from_nanos(timeout_ns), async {
        let resp = lane.client.request(req).await?;
        let status = resp.status().as_u16();
        let body = hyper::body::to_bytes(resp.into_body()).await;
        Ok::<_, hyper::Error>((status, body))
    })
    .await;
    let (connects, port) = {
        let st = lane.state.lock().unwrap();
        (st.connects, st.last_port)
    };
    res["reused"] = json!(connects == before && before > 0);
    if port != 0 {
        res["local_port"] = json!(port);
    }
    match r {
        Err(_) => {
            res["error"] = json!("request timed out");
            res["class"] = json!("timeout");
        }
        Ok(Err(e)) => {
            res["error"] = json!(error_text(&e));
            res["class"] = json!(classify(&e));
        }
        Ok(Ok((status, Ok(b)))) => {
            res["status"] = json!(status);
            res["bytes_in"] = json!(b.len());
        }
        Ok(Ok((status, Err(e)))) => {
            res["status"] = json!(0);
            res["error"] = json!(format!("status {} then the body: {}", status, error_text(&e)));
            res["class"] = json!("other");
        }
    }
    res["end_ns"] = json!(mono_ns().to_string());
    out(res);
}

fn parse_opts() -> Opts {
    let mut o = Opts::default();
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        match args[i].as_str() {
            "--pool-idle-timeout-ns" => o.pool_idle_timeout = v.parse().ok().map(Duration::from_nanos),
            "--retry-canceled-requests" => o.retry_canceled_requests = v.parse().ok(),
            "--pool-max-idle-per-host" => o.pool_max_idle_per_host = v.parse().ok(),
            "--hyper-version" => o.hyper_version = v.clone(),
            _ => {}
        }
        i += 2;
    }
    o
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let opts = parse_opts();
    let mut lanes: HashMap<i64, Arc<Lane>> = HashMap::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    // Sends in flight, waited for at close (their handles are not kept: a long cell
    // sends millions).
    let inflight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let idle = Arc::new(tokio::sync::Notify::new());
    while let Ok(Some(line)) = lines.next_line().await {
        let m: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("hyper-agent: bad line: {}", e);
                continue;
            }
        };
        match m["op"].as_str().unwrap_or("") {
            "hello" => out(json!({"op": "hello", "protocol": 1, "kind": "hyper", "library": format!("hyper {} Client (tokio current_thread)", opts.hyper_version), "version": opts.hyper_version})),
            "send" => {
                let n = m["lane"].as_i64().unwrap_or(0);
                let lane = lanes.entry(n).or_insert_with(|| Arc::new(new_lane(&opts))).clone();
                inflight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (inflight, idle) = (inflight.clone(), idle.clone());
                tokio::spawn(async move {
                    send(lane, m).await;
                    if inflight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                        idle.notify_one();
                    }
                });
            }
            "close" => break,
            other => eprintln!("hyper-agent: unknown op {}", other),
        }
    }
    while inflight.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        idle.notified().await;
    }
}
