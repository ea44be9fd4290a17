//! HTTP metrics and the `/metrics` endpoint. Only the `metrics` facade is used here; the binary
//! installs the Prometheus recorder and hands its renderer to [`with_metrics_endpoint`].
//!
//! The request layer sits on the hot path (thousands of manifest GETs per second), so labels
//! come from small fixed sets of `&'static str`, the path is classified with segment checks
//! only, and each label combination's handle is registered once and then reused: a request
//! costs a counter increment and a histogram sample, with no label allocation and no lookup
//! in the recorder's registry.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics::{Counter, Histogram};
use tower::{Layer, Service};

/// Requests answered, by `method`, `route` and `status` (class).
pub const HTTP_REQUESTS: &str = "bulwark_http_requests_total";
/// Seconds until the response head was ready (body streaming not included), by `route`.
pub const HTTP_DURATION: &str = "bulwark_http_request_duration_seconds";

/// Help texts for the scrape output; call once after installing a recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route class and status class"
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time until the response head was ready (body streaming excluded), by route class"
    );
}

const METHODS: [&str; 7] = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OTHER"];
/// Route classes, the `route` label.
pub const ROUTES: [&str; 7] = [
    "v2_manifest",
    "v2_blob",
    "v2_upload",
    "v2_other",
    "token",
    "api",
    "other",
];
const STATUSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

const V2_MANIFEST: usize = 0;
const V2_BLOB: usize = 1;
const V2_UPLOAD: usize = 2;
const V2_OTHER: usize = 3;
const TOKEN: usize = 4;
const API: usize = 5;
const OTHER: usize = 6;

const CELLS: usize = METHODS.len() * ROUTES.len() * STATUSES.len();

// Registered lazily, on a combination's first request, so that only series that happened are
// exported and the handles come from the recorder installed at start-up.
static COUNTERS: [OnceLock<Counter>; CELLS] = [const { OnceLock::new() }; CELLS];
static DURATIONS: [OnceLock<Histogram>; ROUTES.len()] = [const { OnceLock::new() }; ROUTES.len()];

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::PUT => 2,
        Method::POST => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        _ => 6,
    }
}

fn status_index(s: StatusCode) -> usize {
    (usize::from(s.as_u16() / 100)).clamp(1, 5) - 1
}

/// The route class of a request path; mirrors how `Endpoint::parse` reads `/v2/` paths from
/// the right, so repository names of any depth (even ones containing `blobs`) classify right.
fn route_index(path: &str) -> usize {
    if let Some(rest) = path.strip_prefix("/v2/") {
        let mut segs = rest.rsplit('/');
        let last = segs.next().unwrap_or("");
        let second = segs.next().unwrap_or("");
        let third = segs.next().unwrap_or("");
        if (second == "blobs" && last == "uploads") || (third == "blobs" && second == "uploads") {
            V2_UPLOAD
        } else if second == "blobs" {
            V2_BLOB
        } else if second == "manifests" {
            V2_MANIFEST
        } else {
            V2_OTHER
        }
    } else if path == "/v2" {
        V2_OTHER
    } else if path == "/token" {
        TOKEN
    } else if path == "/api" || path.starts_with("/api/") {
        API
    } else {
        OTHER
    }
}

fn record(method: usize, route: usize, status: StatusCode, started: Instant) {
    let status = status_index(status);
    let cell = (method * ROUTES.len() + route) * STATUSES.len() + status;
    if let Some(slot) = COUNTERS.get(cell) {
        slot.get_or_init(|| {
            metrics::counter!(HTTP_REQUESTS,
                "method" => METHODS[method], "route" => ROUTES[route], "status" => STATUSES[status])
        })
        .increment(1);
    }
    if let Some(slot) = DURATIONS.get(route) {
        slot.get_or_init(|| metrics::histogram!(HTTP_DURATION, "route" => ROUTES[route]))
            .record(started.elapsed().as_secs_f64());
    }
}

/// Counts requests and times them per route class.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpMetricsLayer;

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct HttpMetrics<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for HttpMetrics<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = method_index(req.method());
        let route = route_index(req.uri().path());
        ResponseFuture {
            inner: self.inner.call(req),
            method,
            route,
            started: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner response future; records the request when it resolves.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        method: usize,
        route: usize,
        started: Instant,
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Ok(resp) = &out {
            record(*this.method, *this.route, resp.status(), *this.started);
        }
        Poll::Ready(out)
    }
}

/// Where and how `/metrics` is served.
pub struct MetricsEndpoint {
    /// Absolute path, such as `/metrics`.
    pub path: String,
    /// When set, scrapers must send `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Renders the text exposition format.
    pub render: Arc<dyn Fn() -> String + Send + Sync>,
}

/// Paths the registry itself answers; the metrics path must not shadow any of them.
const RESERVED: [&str; 5] = ["/v2", "/api", "/token", "/healthz", "/readyz"];

/// Whether `path` can serve metrics: absolute, plain characters (axum would read `{` and `*`
/// as captures) and outside the registry's own paths.
pub fn valid_metrics_path(path: &str) -> bool {
    path.len() > 1
        && path.starts_with('/')
        && !path.ends_with('/')
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
        && !RESERVED.iter().any(|r| {
            path.strip_prefix(r)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

/// Adds the metrics endpoint to `app` (after [`crate::router`], so scrapes are not counted
/// as requests). An invalid path is an error rather than a panic in axum's router.
pub fn with_metrics_endpoint(app: Router, endpoint: MetricsEndpoint) -> Result<Router, String> {
    if !valid_metrics_path(&endpoint.path) {
        return Err(format!(
            "metrics path {:?} must be an absolute path of letters, digits and -_./ outside /v2, /api, /token, /healthz and /readyz",
            endpoint.path
        ));
    }
    if endpoint.token.as_deref().is_some_and(str::is_empty) {
        return Err("metrics token must not be empty (leave it unset for no token)".into());
    }
    let expected: Option<Arc<str>> = endpoint.token.map(Into::into);
    let render = endpoint.render;
    let handler = move |headers: HeaderMap| {
        let expected = expected.clone();
        let render = render.clone();
        async move {
            if let Some(expected) = expected.as_deref()
                && !bearer_matches(&headers, expected)
            {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
                    "unauthorized\n",
                )
                    .into_response();
            }
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                )],
                render(),
            )
                .into_response()
        }
    };
    Ok(app.route(&endpoint.path, get(handler)))
}

fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        })
        .map(|(_, token)| token.trim())
    else {
        return false;
    };
    constant_time_eq(given.as_bytes(), expected.as_bytes())
}

/// Compares without returning early on the first differing byte, so response timing does not
/// reveal how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_classes() {
        let cases = [
            ("/v2/", V2_OTHER),
            ("/v2", V2_OTHER),
            ("/v2/_catalog", V2_OTHER),
            ("/v2/library/alpine/manifests/latest", V2_MANIFEST),
            ("/v2/a/b/c/manifests/sha256:abc", V2_MANIFEST),
            ("/v2/library/alpine/blobs/sha256:abc", V2_BLOB),
            ("/v2/blobs/blobs/sha256:abc", V2_BLOB),
            ("/v2/library/alpine/blobs/uploads/", V2_UPLOAD),
            ("/v2/library/alpine/blobs/uploads", V2_UPLOAD),
            ("/v2/library/alpine/blobs/uploads/0b0c-uuid", V2_UPLOAD),
            ("/v2/library/alpine/tags/list", V2_OTHER),
            ("/v2/library/alpine/referrers/sha256:abc", V2_OTHER),
            ("/v2/manifests/x/tags/list", V2_OTHER),
            ("/token", TOKEN),
            ("/api/v1/gc", API),
            ("/api", API),
            ("/apix", OTHER),
            ("/healthz", OTHER),
            ("/metrics", OTHER),
            ("/", OTHER),
        ];
        for (path, want) in cases {
            assert_eq!(ROUTES[route_index(path)], ROUTES[want], "{path}");
        }
    }

    #[test]
    fn methods_and_statuses() {
        assert_eq!(METHODS[method_index(&Method::GET)], "GET");
        assert_eq!(METHODS[method_index(&Method::OPTIONS)], "OTHER");
        assert_eq!(STATUSES[status_index(StatusCode::OK)], "2xx");
        assert_eq!(
            STATUSES[status_index(StatusCode::TEMPORARY_REDIRECT)],
            "3xx"
        );
        assert_eq!(STATUSES[status_index(StatusCode::NOT_FOUND)], "4xx");
        assert_eq!(STATUSES[status_index(StatusCode::BAD_GATEWAY)], "5xx");
        assert_eq!(STATUSES[status_index(StatusCode::CONTINUE)], "1xx");
    }

    #[test]
    fn metrics_paths() {
        for ok in ["/metrics", "/internal/metrics", "/m.txt", "/v2metrics"] {
            assert!(valid_metrics_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/",
            "metrics",
            "/metrics/",
            "/v2",
            "/v2/metrics",
            "/api/metrics",
            "/token",
            "/healthz",
            "/{x}",
            "/*x",
            "/a//b",
        ] {
            assert!(!valid_metrics_path(bad), "{bad}");
        }
    }

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert!(!bearer_matches(&h, "s3cret"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(bearer_matches(&h, "s3cret"));
        assert!(!bearer_matches(&h, "s3cre"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer s3cret"),
        );
        assert!(bearer_matches(&h, "s3cret"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic s3cret"),
        );
        assert!(!bearer_matches(&h, "s3cret"));
    }
}
