//! Registry authentication: `WWW-Authenticate` challenge parsing (RFC 9110 §11.6.1) and the
//! Docker token flow (Basic credentials exchanged at the realm for a Bearer token per scope).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Url;
use serde::Deserialize;

/// One challenge of a `WWW-Authenticate` header: a scheme and its parameters (names lowercased)
/// or a token68.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
    pub token68: Option<String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }

    /// Skips spaces and tabs; says whether any were skipped.
    fn skip_ws(&mut self) -> bool {
        let start = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        self.i > start
    }

    /// Skips list separators: whitespace and commas (empty list elements are allowed).
    fn skip_list_sep(&mut self) -> bool {
        let mut comma = false;
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' => {}
                b',' => comma = true,
                _ => break,
            }
            self.i += 1;
        }
        comma
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> String {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        String::from_utf8_lossy(self.s.get(start..self.i).unwrap_or_default()).into_owned()
    }

    fn token(&mut self) -> String {
        self.take_while(is_tchar)
    }

    fn quoted(&mut self) -> Result<String> {
        // Caller saw the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => bail!("unterminated quoted string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.i += 1;
                    let escaped = self.peek().ok_or_else(|| anyhow!("dangling escape"))?;
                    out.push(escaped);
                    self.i += 1;
                }
                Some(b) => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }

    /// After a parameter name and optional whitespace: `= value`.
    fn param_value(&mut self) -> Result<String> {
        // Caller saw '='.
        self.i += 1;
        self.skip_ws();
        match self.peek() {
            Some(b'"') => self.quoted(),
            _ => Ok(self.token()),
        }
    }

    /// Is the '=' at the cursor the padding of a token68 (only '='s up to a comma or the end)?
    fn at_token68_padding(&self) -> bool {
        let mut j = self.i;
        while self.s.get(j) == Some(&b'=') {
            j += 1;
        }
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        matches!(self.s.get(j), None | Some(b','))
    }
}

/// Parses every challenge of a `WWW-Authenticate` header value, e.g.
/// `Bearer realm="https://auth/token",service="registry",scope="repository:a/b:pull,push"`.
pub fn parse_challenges(header: &str) -> Result<Vec<Challenge>> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip_list_sep();
        if p.eof() {
            break;
        }
        let scheme = p.token();
        if scheme.is_empty() {
            bail!("expected an auth scheme at byte {} of {header:?}", p.i);
        }
        let mut ch = Challenge {
            scheme,
            params: Vec::new(),
            token68: None,
        };
        let spaced = p.skip_ws();
        // First parameter (or token68) follows the scheme after whitespace, without a comma.
        if !p.eof() && p.peek() != Some(b',') {
            if !spaced {
                bail!("expected whitespace after scheme at byte {}", p.i);
            }
            let start = p.i;
            let name = p.token();
            p.skip_ws();
            if !name.is_empty() && p.peek() == Some(b'=') && !p.at_token68_padding() {
                let value = p.param_value()?;
                ch.params.push((name.to_ascii_lowercase(), value));
            } else {
                p.i = start;
                let mut t = p.take_while(is_token68_char);
                if t.is_empty() {
                    bail!("expected a parameter or token68 at byte {}", p.i);
                }
                t.push_str(&p.take_while(|b| b == b'='));
                ch.token68 = Some(t);
            }
        }
        // Further parameters, each after a comma; a token not followed by '=' starts the next
        // challenge.
        let mut next_scheme = false;
        loop {
            let save = p.i;
            p.skip_ws();
            if p.peek() != Some(b',') {
                p.i = save;
                break;
            }
            p.skip_list_sep();
            if p.eof() {
                break;
            }
            let start = p.i;
            let name = p.token();
            if name.is_empty() {
                bail!("expected a parameter name at byte {}", p.i);
            }
            p.skip_ws();
            if p.peek() == Some(b'=') && ch.token68.is_none() {
                let value = p.param_value()?;
                ch.params.push((name.to_ascii_lowercase(), value));
            } else {
                p.i = start;
                next_scheme = true;
                break;
            }
        }
        if !next_scheme {
            p.skip_ws();
            if !p.eof() {
                // Parameters and challenges are comma-separated; anything else is malformed.
                bail!("unexpected text at byte {} of {header:?}", p.i);
            }
        }
        out.push(ch);
    }
    Ok(out)
}

/// True for hosts this tool may talk to: the loopback range only.
pub fn is_loopback_url(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// How a request is authorised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthHeader {
    None,
    Basic { user: String, pass: String },
    Bearer(String),
}

impl AuthHeader {
    pub fn apply(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            AuthHeader::None => rb,
            AuthHeader::Basic { user, pass } => rb.basic_auth(user, Some(pass)),
            AuthHeader::Bearer(t) => rb.bearer_auth(t),
        }
    }
}

struct CachedToken {
    token: String,
    expires: Instant,
}

#[derive(Default)]
struct State {
    challenge: Option<Challenge>,
    tokens: HashMap<String, CachedToken>,
}

/// Credentials plus what the registry told us: its challenge and the tokens fetched per scope.
pub struct Authenticator {
    creds: Option<(String, String)>,
    state: Mutex<State>,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// Tokens are refreshed this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(5);
/// Docker token spec: without `expires_in` a token lives 60 s.
const DEFAULT_TOKEN_LIFETIME: u64 = 60;

impl Authenticator {
    pub fn new(creds: Option<(String, String)>) -> Self {
        Authenticator {
            creds,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| anyhow!("authenticator state poisoned"))
    }

    /// Records the challenge of a 401 response and forgets the token cached for `scope`.
    pub fn learn(&self, www_authenticate: &str, scope: &str) -> Result<()> {
        let challenges = parse_challenges(www_authenticate)
            .with_context(|| format!("parsing WWW-Authenticate {www_authenticate:?}"))?;
        let chosen = challenges
            .iter()
            .find(|c| c.is("bearer"))
            .or_else(|| challenges.iter().find(|c| c.is("basic")))
            .cloned()
            .ok_or_else(|| anyhow!("no supported challenge in {www_authenticate:?}"))?;
        let mut st = self.lock()?;
        st.tokens.remove(scope);
        st.challenge = Some(chosen);
        Ok(())
    }

    /// The scheme in use: `anonymous`, or the challenge's scheme lowercased.
    pub fn mode(&self) -> String {
        self.lock()
            .ok()
            .and_then(|s| s.challenge.as_ref().map(|c| c.scheme.to_ascii_lowercase()))
            .unwrap_or_else(|| "anonymous".to_owned())
    }

    /// The authorisation for a request needing `scope` (`repository:<name>:pull,push`).
    pub async fn header_for(&self, http: &reqwest::Client, scope: &str) -> Result<AuthHeader> {
        let challenge = {
            let st = self.lock()?;
            match &st.challenge {
                None => return Ok(AuthHeader::None),
                Some(c) if c.is("basic") => {
                    let (user, pass) = self
                        .creds
                        .clone()
                        .ok_or_else(|| anyhow!("registry wants Basic auth; pass --username"))?;
                    return Ok(AuthHeader::Basic { user, pass });
                }
                Some(c) => {
                    if let Some(t) = st.tokens.get(scope)
                        && t.expires > Instant::now() + TOKEN_MARGIN
                    {
                        return Ok(AuthHeader::Bearer(t.token.clone()));
                    }
                    c.clone()
                }
            }
        };
        let (token, lifetime) = self.fetch_token(http, &challenge, scope).await?;
        let mut st = self.lock()?;
        st.tokens.insert(
            scope.to_owned(),
            CachedToken {
                token: token.clone(),
                expires: Instant::now() + Duration::from_secs(lifetime),
            },
        );
        Ok(AuthHeader::Bearer(token))
    }

    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        challenge: &Challenge,
        scope: &str,
    ) -> Result<(String, u64)> {
        let realm = challenge
            .param("realm")
            .ok_or_else(|| anyhow!("Bearer challenge without realm"))?;
        let mut url = Url::parse(realm).with_context(|| format!("token realm {realm:?}"))?;
        if !is_loopback_url(&url) {
            bail!("token realm {realm} is not on loopback; this tool only talks to 127.0.0.1");
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = challenge.param("service") {
                q.append_pair("service", service);
            }
            q.append_pair("scope", scope);
        }
        let mut rb = http.get(url.clone());
        if let Some((user, pass)) = &self.creds {
            rb = rb.basic_auth(user, Some(pass));
        }
        let resp = rb.send().await.with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            bail!("token request to {url} failed: {status} {}", snippet(&body));
        }
        let tr: TokenResponse = resp.json().await.context("token response is not JSON")?;
        let token = tr
            .token
            .or(tr.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow!("token response has no token"))?;
        Ok((token, tr.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME)))
    }
}

pub fn snippet(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or_default()),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(h: &str) -> Challenge {
        let v = parse_challenges(h).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        v.into_iter().next().unwrap()
    }

    #[test]
    fn docker_bearer_challenge() {
        let c = one(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert!(c.is("bearer"));
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(
            c.param("scope"),
            Some("repository:samalba/my-app:pull,push")
        );
        assert_eq!(c.token68, None);
    }

    #[test]
    fn whitespace_case_tokens_and_escapes() {
        let c = one(
            r#"bearer  REALM = "http://127.0.0.1:1/t?a=b" ,  Service=reg , error="say \"hi\"\\""#,
        );
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("http://127.0.0.1:1/t?a=b"));
        assert_eq!(c.param("service"), Some("reg"));
        assert_eq!(c.param("error"), Some(r#"say "hi"\"#));
    }

    #[test]
    fn several_challenges_in_one_header() {
        let v =
            parse_challenges(r#"Basic realm="basic-realm", Bearer realm="http://x/t",service="s""#)
                .unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[0].is("basic"));
        assert_eq!(v[0].param("realm"), Some("basic-realm"));
        assert!(v[1].is("bearer"));
        assert_eq!(v[1].param("service"), Some("s"));

        let v = parse_challenges("Negotiate abc+/x==, Basic realm=r").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].token68.as_deref(), Some("abc+/x=="));
        assert_eq!(v[1].param("realm"), Some("r"));

        let v = parse_challenges("Basic, Bearer").unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[1].params.is_empty());
    }

    #[test]
    fn malformed_headers_are_errors() {
        for bad in [
            r#"Bearer realm="unterminated"#,
            "=realm",
            r#"Bearer realm="x" service="y""#,
            "Bearer\"x\"",
            r#"Bearer realm="a\"#,
        ] {
            assert!(parse_challenges(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(parse_challenges("").unwrap().is_empty());
    }

    #[test]
    fn learn_prefers_bearer() {
        let a = Authenticator::new(None);
        assert_eq!(a.mode(), "anonymous");
        a.learn(
            r#"Basic realm="r", Bearer realm="http://127.0.0.1:9/t""#,
            "s",
        )
        .unwrap();
        assert_eq!(a.mode(), "bearer");
        assert!(a.learn("Digest", "s").is_err());
    }

    #[test]
    fn loopback_only() {
        for (u, ok) in [
            ("http://127.0.0.1:5000", true),
            ("http://127.3.4.5/", true),
            ("http://localhost:1/", true),
            ("http://[::1]:5000/", true),
            ("http://10.0.0.1/", false),
            ("http://example.com/", false),
        ] {
            assert_eq!(is_loopback_url(&Url::parse(u).unwrap()), ok, "{u}");
        }
    }
}
