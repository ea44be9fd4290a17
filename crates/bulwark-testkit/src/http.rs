//! A deliberately tiny HTTP/1.1 client over `std::net::TcpStream`: one request per connection
//! (`Connection: close`), whole bodies in memory. Enough for health checks and test pushes
//! without pulling an async stack into the testkit.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// A complete response: status, headers in arrival order, and the (de-chunked) body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// `METHOD target` of the request, for failure messages.
    pub request: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Panics, showing the request and the body, unless the status is `status`.
    pub fn expect_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "{} answered {} (expected {status}); headers {:?}; body: {}",
            self.request,
            self.status,
            self.headers,
            self.text()
        );
        self
    }

    /// Panics unless this is an OCI error response: status `status`, a JSON Content-Type and
    /// `code` among the body's `errors[].code`.
    pub fn expect_error(&self, status: u16, code: &str) -> &Self {
        self.expect_status(status);
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "{} answered {status} with Content-Type {content_type:?}, not application/json; body: {}",
            self.request,
            self.text()
        );
        let codes = crate::error_codes(&self.body);
        assert!(
            codes.iter().any(|c| c == code),
            "{} answered {status} with error codes {codes:?}, expected {code}; body: {}",
            self.request,
            self.text()
        );
        self
    }

    /// The body parsed as JSON; panics if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} answered a body that is not JSON ({e}): {}",
                self.request,
                self.text()
            )
        })
    }
}

/// The socket address of a `http://127.0.0.1:<port>` base URL. Panics on anything that is
/// not an IPv4 loopback address: tests never talk to another host.
pub fn loopback_addr(base: &str) -> SocketAddr {
    let rest = base
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("base URL {base:?} is not http://"));
    let authority = rest.split('/').next().unwrap_or(rest);
    let addr: SocketAddr = authority
        .parse()
        .unwrap_or_else(|e| panic!("base URL {base:?}: {e}"));
    assert_eq!(
        addr.ip(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        "tests only ever connect to 127.0.0.1, not {addr}"
    );
    addr
}

/// The request target (path and query) of a `Location` that is either relative or an absolute
/// URL on the server at `addr`. Panics if an absolute location points elsewhere.
pub fn request_target(addr: SocketAddr, location: &str) -> String {
    match location.strip_prefix("http://") {
        Some(rest) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            assert_eq!(
                authority,
                addr.to_string(),
                "Location {location:?} points away from the server at {addr}"
            );
            if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            }
        }
        None => {
            assert!(
                location.starts_with('/'),
                "Location {location:?} is neither absolute nor an absolute path"
            );
            location.to_owned()
        }
    }
}

/// The credentials a request is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Auth<'a> {
    /// HTTP Basic as [`crate::ADMIN_USER`] / [`crate::ADMIN_PASSWORD`] (the default).
    #[default]
    Admin,
    /// No `Authorization` header.
    Anonymous,
    /// HTTP Basic with this username and password (or robot secret, or personal token).
    Basic(&'a str, &'a str),
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
}

impl Auth<'_> {
    /// The `Authorization` header value, `None` for [`Auth::Anonymous`].
    pub fn header_value(&self) -> Option<String> {
        match *self {
            Auth::Admin => Some(crate::basic_header(
                crate::ADMIN_USER,
                crate::ADMIN_PASSWORD,
            )),
            Auth::Anonymous => None,
            Auth::Basic(user, password) => Some(crate::basic_header(user, password)),
            Auth::Bearer(token) => Some(format!("Bearer {token}")),
        }
    }
}

/// Sends one request as the admin (unless `headers` has an `Authorization`) and reads the
/// whole response. `target` is the path and query. A body (possibly empty) is sent with
/// `Content-Length` for every method but GET and HEAD.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    http_request_as(addr, Auth::Admin, method, target, headers, body)
}

/// [`http_request`] with the given credentials; an `Authorization` in `headers` wins.
pub fn http_request_as(
    addr: SocketAddr,
    auth: Auth<'_>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let authorization = auth.header_value().filter(|_| {
        !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    });
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.set_write_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !(method == "GET" || method == "HEAD") || !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if let Some(value) = authorization {
        head.push_str(&format!("Authorization: {value}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // A server may answer (and close) before it has read the whole body, for example a 413;
    // then the write fails but the answer is still there to read.
    let written = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .and_then(|()| stream.flush());
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let read_error = loop {
        match stream.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    match parse_response(&raw, method == "HEAD") {
        Ok(mut resp) => {
            resp.request = format!("{method} {target}");
            Ok(resp)
        }
        // Nothing usable came back: report the first failure.
        Err(parse_error) => Err(written.err().or(read_error).unwrap_or(parse_error)),
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn parse_response(raw: &[u8], head_request: bool) -> io::Result<HttpResponse> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid(format!("truncated response head ({} bytes)", raw.len())))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| invalid("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let body = if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        dechunk(rest)?
    } else if let Some(len) = find("content-length") {
        let len: usize = len.parse().map_err(|_| invalid("bad Content-Length"))?;
        if rest.len() < len {
            return Err(invalid(format!(
                "body truncated: {} of {len} bytes",
                rest.len()
            )));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse {
        request: String::new(),
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("truncated chunk size"))?;
        let line = std::str::from_utf8(&rest[..line_end]).map_err(|_| invalid("chunk size"))?;
        let size_hex = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_hex, 16).map_err(|_| invalid("bad chunk size line"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            return Err(invalid("truncated chunk"));
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked_bodies() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: b\r\n\r\nabc",
            false,
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]));
        assert_eq!(r.header("x-a"), Some("b"));
        let r = parse_response(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;x\r\nc\r\n0\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &b"abc"[..]));
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true).unwrap();
        assert!(r.body.is_empty());
    }

    #[test]
    fn targets_of_locations() {
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(
            request_target(addr, "/v2/a/blobs/uploads/x"),
            "/v2/a/blobs/uploads/x"
        );
        assert_eq!(
            request_target(addr, "http://127.0.0.1:5000/v2/a?x=1"),
            "/v2/a?x=1"
        );
        assert_eq!(loopback_addr("http://127.0.0.1:5000"), addr);
    }
}
