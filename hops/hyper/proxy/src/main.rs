//! idlerace's hyper proxy: a reverse proxy on hyper 0.14, the seed's setup. Its
//! `Server` takes the load's requests and its one `Client` (with `Client::builder()`'s
//! defaults: pool_idle_timeout 90 s, retry_canceled_requests true, unless the hop's
//! options set them) forwards them to the upstream; a request the Client fails is
//! answered 502, as a hyper proxy written the usual way answers it. The Client's pool of
//! idle upstream connections is the pool under test.
//!
//! Arguments: --listen HOST:PORT --upstream HOST:PORT --log PATH --ready-path P
//! --ready-token T [--pool-idle-timeout-ns N] [--retry-canceled-requests true|false]
//! [--pool-max-idle-per-host N]. Each request is a JSON line in the log:
//! {"status":S,"uri":U,"id":I,"error":E}.
use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::client::HttpConnector;
use hyper::header::HeaderMap;
use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Client, Request, Response, Server, StatusCode, Uri};
use serde_json::json;

struct State {
    client: Client<HttpConnector, Body>,
    upstream: String,
    ready_path: String,
    ready_token: String,
    log: Mutex<File>,
}

#[derive(Default)]
struct Opts {
    listen: String,
    upstream: String,
    log: String,
    ready_path: String,
    ready_token: String,
    pool_idle_timeout: Option<Duration>,
    retry_canceled_requests: Option<bool>,
    pool_max_idle_per_host: Option<usize>,
}

fn parse_args() -> Result<Opts, String> {
    let args: Vec<String> = std::env::args().collect();
    let mut o = Opts::default();
    let mut i = 1;
    while i + 1 < args.len() {
        let v = args[i + 1].clone();
        match args[i].as_str() {
            "--listen" => o.listen = v,
            "--upstream" => o.upstream = v,
            "--log" => o.log = v,
            "--ready-path" => o.ready_path = v,
            "--ready-token" => o.ready_token = v,
            "--pool-idle-timeout-ns" => {
                o.pool_idle_timeout = Some(Duration::from_nanos(v.parse().map_err(|e| format!("--pool-idle-timeout-ns {v}: {e}"))?))
            }
            "--retry-canceled-requests" => o.retry_canceled_requests = Some(v == "true"),
            "--pool-max-idle-per-host" => {
                o.pool_max_idle_per_host = Some(v.parse().map_err(|e| format!("--pool-max-idle-per-host {v}: {e}"))?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
        i += 2;
    }
    if o.listen.is_empty() || o.upstream.is_empty() || o.log.is_empty() {
        return Err("--listen, --upstream and --log are required".into());
    }
    Ok(o)
}

// Hop-by-hop headers (RFC 9110 7.6.1) are the connection's, not the message's: a proxy
// does not pass them on either way, so the load's keep-alive and the upstream's
// `Connection: close` or `Keep-Alive` stay on their own hop.
fn strip_hop_headers(h: &mut HeaderMap) {
    for name in ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"] {
        h.remove(name);
    }
}

fn log_line(st: &State, status: u16, uri: &str, id: &str, error: &str) {
    let line = json!({"status": status, "uri": uri, "id": id, "error": error});
    let mut f = st.log.lock().unwrap();
    let _ = writeln!(f, "{}", line);
    let _ = f.flush();
}

async fn handle(st: Arc<State>, req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    if req.uri().path() == st.ready_path {
        return Ok(Response::new(Body::from(st.ready_token.clone())));
    }
    let id = req.headers().get("idlerace-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (mut parts, body) = req.into_parts();
    parts.uri = match format!("http://{}{}", st.upstream, path).parse::<Uri>() {
        Ok(u) => u,
        Err(e) => {
            log_line(&st, 400, &path, &id, &e.to_string());
            let mut r = Response::new(Body::from(format!("bad request uri: {e}\n")));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(r);
        }
    };
    strip_hop_headers(&mut parts.headers);
    match st.client.request(Request::from_parts(parts, body)).await {
        Ok(mut r) => {
            strip_hop_headers(r.headers_mut());
            log_line(&st, r.status().as_u16(), &path, &id, "");
            Ok(r)
        }
        Err(e) => {
            // The upstream connection failed under the request (the race: hyper wrote it
            // into a pooled connection the upstream had closed): the caller's 502.
            let text = format!("{e}");
            log_line(&st, 502, &path, &id, &text);
            let mut r = Response::new(Body::from(format!("bad gateway: {text}\n")));
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(r)
        }
    }
}

#[tokio::main]
async fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("idlerace-hyper-proxy: {e}");
            std::process::exit(2);
        }
    };
    let log = match OpenOptions::new().create(true).append(true).open(&o.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("idlerace-hyper-proxy: {}: {e}", o.log);
            std::process::exit(3);
        }
    };
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
    let st = Arc::new(State {
        client: b.build_http(),
        upstream: o.upstream.clone(),
        ready_path: o.ready_path.clone(),
        ready_token: o.ready_token.clone(),
        log: Mutex::new(log),
    });
    let addr: SocketAddr = match o.listen.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("idlerace-hyper-proxy: --listen {}: {e}", o.listen);
            std::process::exit(2);
        }
    };
    let make = make_service_fn(move |_conn| {
        let st = st.clone();
        async move { Ok::<_, Infallible>(service_fn(move |req| handle(st.clone(), req))) }
    });
    // hyper's Server keeps the load's connections alive with no idle timeout of its own:
    // only the Client's pool, on the upstream side, races an idle close.
    let server = match Server::try_bind(&addr) {
        Ok(s) => s.serve(make),
        Err(e) => {
            eprintln!("idlerace-hyper-proxy: bind {addr}: {e}");
            std::process::exit(3);
        }
    };
    eprintln!("idlerace-hyper-proxy: listening on {addr}, upstream {}", o.upstream);
    if let Err(e) = server.await {
        eprintln!("idlerace-hyper-proxy: {e}");
        std::process::exit(1);
    }
}
