//! Config lint: risky settings in an image's config and file tree.
//!
//! | id | severity | what |
//! |---|---|---|
//! | `root-user` | medium | no `USER`, or `USER root` / `0` / `0:0` / `root:…` |
//! | `secret-env` | high | an `Env` variable whose name looks like a secret (`*PASSWORD*`, `*PASSWD*`, `*SECRET*`, `*TOKEN` segments, `*API_KEY*`/`*APIKEY*`, `*ACCESS_KEY*`, `*PRIVATE_KEY*`, `*CREDENTIAL*`, `AWS_ACCESS_KEY_ID`), or whose value holds private-key material or an AWS access key id |
//! | `secret-in-history` | high | the same in a build step (`history[].created_by`): `NAME=value`, `ENV NAME value`, `--password value`, private keys |
//! | `ssh-port-exposed` | medium | `ExposedPorts` has `22/tcp` (or `22`) |
//! | `telnet-port-exposed` | high | `ExposedPorts` has `23/tcp` (or `23`) |
//! | `setuid-binary` | medium | a regular file (or hardlink) with the setuid bit in the squashed tree |
//! | `setgid-binary` | low | the same with only the setgid bit |
//! | `image-age` | low | config `created` older than [`LintOptions::max_age_days`] |
//!
//! Secret values are never copied into a finding: env findings name the
//! variable only; history evidence is the build step with every secret
//! value replaced by `<redacted>` (and as a second line of defence, every
//! secret value found anywhere is scrubbed from all messages and evidence).
//! Variables named `*_FILE`, `*_PATH` or `*_DIR` (`POSTGRES_PASSWORD_FILE`)
//! point at a secret rather than hold one and are not reported, nor are
//! empty values.
//!
//! Setuid/setgid files come from the squashed tree, which keeps the mode
//! bits and the layer that last wrote every path (bounded by
//! [`Limits::max_tree_entries`](crate::image::Limits::max_tree_entries)); a
//! file a later layer removed or `chmod u-s`-ed is not reported. At most
//! [`MAX_FILE_FINDINGS`] files are listed, the rest only counted; likewise
//! at most [`MAX_SECRET_FINDINGS`] `secret-env` and as many
//! `secret-in-history` findings (the config can be megabytes of hostile
//! JSON).
//!
//! Image age: whole days from config `created` to `now` (0 for a `created`
//! in the future). A `created` that is missing, unparsable or the Unix
//! epoch (what reproducible builds write, `SOURCE_DATE_EPOCH=0`) is
//! unknown: no age, no finding.

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;

use crate::image::{EntryKind, ImageConfig, ScannedImage, Squash};
use crate::vulndb::Timestamp;

/// Default for [`LintOptions::max_age_days`].
pub const DEFAULT_MAX_AGE_DAYS: u64 = 365;

/// At most this many setuid/setgid files are reported one by one.
pub const MAX_FILE_FINDINGS: usize = 200;

/// At most this many `secret-env`, and as many `secret-in-history`,
/// findings are reported; the rest are only counted.
pub const MAX_SECRET_FINDINGS: usize = 100;

/// Secret values scrubbed as substrings of the output text; all of them
/// are still scrubbed as whole words.
const MAX_SCRUB_SUBSTRINGS: usize = 1000;

/// Longest history evidence kept, in bytes (cut at a character boundary).
const MAX_EVIDENCE_BYTES: usize = 300;

/// Secret values shorter than this are not scrubbed from other text (they
/// would mangle it); they are still never copied on purpose.
const MIN_SCRUB_LEN: usize = 4;

const REDACTED: &str = "<redacted>";

/// How to lint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LintOptions {
    /// The time to measure the image's age against (Unix seconds).
    pub now: i64,
    /// Images older than this many days get an `image-age` finding.
    pub max_age_days: u64,
}

impl LintOptions {
    /// Lints as of `now` with the default age threshold.
    pub fn at(now: i64) -> LintOptions {
        LintOptions {
            now,
            max_age_days: DEFAULT_MAX_AGE_DAYS,
        }
    }
}

/// How much a finding matters; ordered from most to least severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LintSeverity {
    High,
    Medium,
    Low,
}

impl LintSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            LintSeverity::High => "high",
            LintSeverity::Medium => "medium",
            LintSeverity::Low => "low",
        }
    }
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintFinding {
    /// The rule (see the module docs).
    pub id: &'static str,
    pub severity: LintSeverity,
    pub message: String,
    /// What was seen: `USER root`, the variable name, the redacted build
    /// step, the port, the file path and mode.
    pub evidence: String,
    /// The layer concerned (setuid/setgid files), if one.
    pub layer: Option<usize>,
    /// The history entry concerned (`secret-in-history`), if one.
    pub history_index: Option<usize>,
}

/// Findings per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LintCounts {
    pub high: usize,
    pub medium: usize,
    pub low: usize,
}

/// The config lint of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintReport {
    /// Sorted by severity (highest first), id, evidence.
    pub findings: Vec<LintFinding>,
    pub counts: LintCounts,
    /// Days since config `created`; `None` when unknown.
    pub image_age_days: Option<u64>,
    /// The threshold used for `image-age`.
    pub max_age_days: u64,
    /// Findings past the caps ([`MAX_FILE_FINDINGS`] setuid/setgid files,
    /// [`MAX_SECRET_FINDINGS`] each of `secret-env` and
    /// `secret-in-history`), counted only.
    pub omitted: usize,
}

/// Lints a scanned image.
pub fn lint_image(image: &ScannedImage, options: &LintOptions) -> LintReport {
    lint(&image.config, Some(&image.files), options)
}

/// Lints a config and, when given, the squashed file tree.
pub fn lint(config: &ImageConfig, files: Option<&Squash>, options: &LintOptions) -> LintReport {
    let mut findings = Vec::new();
    let mut secrets = Secrets::default();

    root_user(config, &mut findings);
    let mut omitted = secret_env(config, &mut findings, &mut secrets);
    omitted += secret_history(config, &mut findings, &mut secrets);
    exposed_ports(config, &mut findings);
    omitted += files.map_or(0, |f| setuid_files(f, &mut findings));
    let image_age_days = image_age(config, options, &mut findings);

    // Defence in depth: no secret value survives anywhere in the text.
    for f in &mut findings {
        f.message = secrets.scrub(&f.message);
        f.evidence = secrets.scrub(&f.evidence);
    }
    findings.sort_by(|a, b| {
        (a.severity, a.id, &a.evidence, a.layer, a.history_index).cmp(&(
            b.severity,
            b.id,
            &b.evidence,
            b.layer,
            b.history_index,
        ))
    });
    let mut counts = LintCounts::default();
    for f in &findings {
        match f.severity {
            LintSeverity::High => counts.high += 1,
            LintSeverity::Medium => counts.medium += 1,
            LintSeverity::Low => counts.low += 1,
        }
    }
    LintReport {
        findings,
        counts,
        image_age_days,
        max_age_days: options.max_age_days,
        omitted,
    }
}

fn finding(
    id: &'static str,
    severity: LintSeverity,
    message: String,
    evidence: String,
) -> LintFinding {
    LintFinding {
        id,
        severity,
        message,
        evidence,
        layer: None,
        history_index: None,
    }
}

fn root_user(config: &ImageConfig, out: &mut Vec<LintFinding>) {
    if !config.runs_as_root() {
        return;
    }
    let user = config.user.as_deref().unwrap_or("").trim();
    let evidence = if user.is_empty() {
        "USER not set".to_owned()
    } else {
        format!("USER {}", truncate(user, 64))
    };
    out.push(finding(
        "root-user",
        LintSeverity::Medium,
        "the image runs as root: set a non-root USER".to_owned(),
        evidence,
    ));
}

/// Whether a variable or flag name looks like it holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper: String = name
        .trim()
        .chars()
        .map(|c| {
            if c == '-' || c == '.' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    let upper = upper.trim_start_matches('_');
    if upper.is_empty() {
        return false;
    }
    // Points at a secret rather than holding it.
    if ["_FILE", "_PATH", "_DIR"]
        .iter()
        .any(|s| upper.ends_with(s))
    {
        return false;
    }
    const SUBSTRINGS: &[&str] = &[
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "API_KEY",
        "APIKEY",
        "ACCESS_KEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
    ];
    if SUBSTRINGS.iter().any(|s| upper.contains(s)) {
        return true;
    }
    // `TOKEN` as (the end of) a word: `GITHUB_TOKEN`, `AUTHTOKEN`, not
    // `TOKENIZERS_PARALLELISM`.
    upper
        .split('_')
        .any(|seg| seg.ends_with("TOKEN") || seg == "TOKENS")
}

/// Whether a value holds private-key material or an AWS access key id.
fn is_secret_value(value: &str) -> bool {
    has_private_key(value) || has_aws_key_id(value)
}

fn has_private_key(value: &str) -> bool {
    value
        .match_indices("-----BEGIN ")
        .any(|(i, _)| value.get(i..).is_some_and(begins_private_key))
}

/// Whether `block` starts with a `-----BEGIN … PRIVATE KEY-----` line.
fn begins_private_key(block: &str) -> bool {
    let Some(after) = block.strip_prefix("-----BEGIN ") else {
        return false;
    };
    let label = after.get(..after.len().min(64)).unwrap_or(after);
    label
        .find("-----")
        .and_then(|end| label.get(..end))
        .is_some_and(|l| l.ends_with("PRIVATE KEY"))
}

fn has_aws_key_id(value: &str) -> bool {
    let b = value.as_bytes();
    b.windows(20).any(|w| {
        let (prefix, rest) = w.split_at(4);
        matches!(prefix, b"AKIA" | b"ASIA")
            && rest
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    })
}

/// Adds `secret-env` findings; returns how many past the cap.
fn secret_env(config: &ImageConfig, out: &mut Vec<LintFinding>, secrets: &mut Secrets) -> usize {
    let mut seen = BTreeSet::new();
    let mut omitted = 0usize;
    for entry in &config.env {
        let (name, value) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        if value.is_empty() {
            continue;
        }
        let by_name = is_secret_name(name);
        let by_value = is_secret_value(value);
        if !by_name && !by_value {
            continue;
        }
        secrets.add(value);
        let name = truncate(name, 128);
        if seen.contains(&name) {
            continue;
        }
        if seen.len() >= MAX_SECRET_FINDINGS {
            omitted = omitted.saturating_add(1);
            continue;
        }
        seen.insert(name.clone());
        let message = if by_value {
            format!("environment variable {name} holds key material; pass secrets at run time")
        } else {
            format!("environment variable {name} looks like a secret; pass secrets at run time")
        };
        out.push(finding("secret-env", LintSeverity::High, message, name));
    }
    omitted
}

/// Adds `secret-in-history` findings; returns how many past the cap.
fn secret_history(
    config: &ImageConfig,
    out: &mut Vec<LintFinding>,
    secrets: &mut Secrets,
) -> usize {
    let mut listed = 0;
    let mut omitted = 0usize;
    for (index, h) in config.history.iter().enumerate() {
        let Some(cmd) = h.created_by.as_deref() else {
            continue;
        };
        let redacted = redact_command(cmd);
        if redacted.names.is_empty() {
            continue;
        }
        for v in &redacted.values {
            secrets.add(v);
        }
        if listed >= MAX_SECRET_FINDINGS {
            omitted = omitted.saturating_add(1);
            continue;
        }
        listed += 1;
        let names: Vec<String> = redacted.names.iter().map(|n| truncate(n, 64)).collect();
        out.push(LintFinding {
            history_index: Some(index),
            ..finding(
                "secret-in-history",
                LintSeverity::High,
                format!(
                    "build step {index} sets {}; build steps are stored in the image",
                    names.join(", ")
                ),
                truncate(&redacted.text, MAX_EVIDENCE_BYTES),
            )
        })
    }
    omitted
}

/// A build step with its secrets removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Redacted {
    /// The step, whitespace collapsed, secret values replaced.
    pub(crate) text: String,
    /// Names of the secrets found (`private key` for key material), in
    /// order, without duplicates.
    pub(crate) names: Vec<String>,
    /// The values removed.
    pub(crate) values: Vec<String>,
}

impl Redacted {
    fn found(&mut self, name: &str, value: &str) {
        if !self.names.iter().any(|n| n == name) {
            self.names.push(name.to_owned());
        }
        if !value.is_empty() {
            self.values.push(value.to_owned());
        }
    }
}

/// Removes secret values from a build step: private-key blocks,
/// `NAME=value` with a secret-looking name (also `--name=value`, quoted
/// values), `ENV NAME value`, `--name value`; and values that are
/// themselves key material.
pub(crate) fn redact_command(cmd: &str) -> Redacted {
    let mut r = Redacted::default();
    let cmd = redact_private_keys(cmd, &mut r);
    let tokens: Vec<&str> = cmd.split_whitespace().collect();
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while let Some(&tok) = tokens.get(i) {
        i += 1;
        if let Some((lhs, value)) = tok.split_once('=') {
            let name = lhs.trim_start_matches(['-', '"', '\'']);
            if is_secret_name(name) || is_secret_value(value) {
                let open = lhs.chars().next().filter(|c| *c == '"' || *c == '\'');
                let (value, next) = quoted_value(value, open, &tokens, i);
                i = next;
                r.found(name, &value);
                out.push(format!("{lhs}={REDACTED}"));
                continue;
            }
        } else if is_secret_value(tok) {
            r.found("AWS access key id", tok);
            out.push(REDACTED.to_owned());
            continue;
        } else {
            let flag = tok.starts_with('-');
            let after_env = out.last().is_some_and(|p| p == "ENV");
            let name = tok.trim_start_matches('-');
            if (flag || after_env)
                && is_secret_name(name)
                && let Some(&value) = tokens.get(i)
            {
                let (value, next) = quoted_value(value, None, &tokens, i + 1);
                i = next;
                r.found(name, &value);
                out.push(tok.to_owned());
                out.push(REDACTED.to_owned());
                continue;
            }
        }
        out.push(tok.to_owned());
    }
    r.text = out.join(" ");
    r
}

/// The value starting with `first`; when it opens a quote (or `open`, a
/// quote opened before it) that `first` does not close, the following
/// tokens up to the closing one. Returns the value and the index of the
/// next token.
fn quoted_value(first: &str, open: Option<char>, tokens: &[&str], next: usize) -> (String, usize) {
    let (q, body) = match (open, first.chars().next()) {
        (Some(q), _) => (q, first),
        (None, Some(q @ ('"' | '\''))) => (q, first.get(1..).unwrap_or("")),
        _ => return (first.to_owned(), next),
    };
    if body.ends_with(q) {
        return (first.to_owned(), next);
    }
    let mut value = first.to_owned();
    let mut j = next;
    while let Some(t) = tokens.get(j) {
        j += 1;
        value.push(' ');
        value.push_str(t);
        if t.ends_with(q) {
            break;
        }
    }
    (value, j)
}

/// Replaces each `-----BEGIN … PRIVATE KEY-----` block (to its `-----END
/// …-----` line, or to the end of the text) with `<redacted>`.
fn redact_private_keys(cmd: &str, r: &mut Redacted) -> String {
    let mut out = String::with_capacity(cmd.len());
    let mut rest = cmd;
    while let Some(start) = rest.find("-----BEGIN ") {
        let (before, block) = rest.split_at(start);
        if !begins_private_key(block) {
            out.push_str(before);
            out.push_str("-----BEGIN ");
            rest = block.get("-----BEGIN ".len()..).unwrap_or("");
            continue;
        }
        out.push_str(before);
        out.push_str(REDACTED);
        let end = block.find("-----END ").and_then(|e| {
            let tail = block.get(e + "-----END ".len()..)?;
            tail.find("-----")
                .map(|c| e + "-----END ".len() + c + "-----".len())
        });
        let cut = end.unwrap_or(block.len());
        r.found("private key", block.get(..cut).unwrap_or(block));
        rest = block.get(cut..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

fn exposed_ports(config: &ImageConfig, out: &mut Vec<LintFinding>) {
    for port in &config.exposed_ports {
        let p = port.trim().to_ascii_lowercase();
        let (number, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
        if proto != "tcp" {
            continue;
        }
        let (id, severity, what) = match number {
            "22" => ("ssh-port-exposed", LintSeverity::Medium, "SSH"),
            "23" => ("telnet-port-exposed", LintSeverity::High, "telnet"),
            _ => continue,
        };
        out.push(finding(
            id,
            severity,
            format!("the image exposes the {what} port {number}/tcp; use `docker exec`/`kubectl exec` instead of a remote shell"),
            format!("ExposedPorts {number}/tcp"),
        ));
    }
}

/// Adds one finding per setuid/setgid file (up to [`MAX_FILE_FINDINGS`]);
/// returns how many more there were.
fn setuid_files(files: &Squash, out: &mut Vec<LintFinding>) -> usize {
    let mut listed = 0;
    let mut omitted = 0usize;
    for (path, node) in files.iter() {
        if !matches!(node.info.kind, EntryKind::File | EntryKind::Hardlink { .. }) {
            continue;
        }
        let (suid, sgid) = (node.info.is_setuid(), node.info.is_setgid());
        if !suid && !sgid {
            continue;
        }
        if listed >= MAX_FILE_FINDINGS {
            omitted = omitted.saturating_add(1);
            continue;
        }
        listed += 1;
        let (id, severity, bits) = match (suid, sgid) {
            (true, true) => ("setuid-binary", LintSeverity::Medium, "setuid and setgid"),
            (true, false) => ("setuid-binary", LintSeverity::Medium, "setuid"),
            _ => ("setgid-binary", LintSeverity::Low, "setgid"),
        };
        let path = truncate(path, 256);
        out.push(LintFinding {
            layer: Some(node.layer),
            ..finding(
                id,
                severity,
                format!(
                    "/{path} is {bits} (owner {}:{}), added by layer {}",
                    node.info.uid, node.info.gid, node.layer
                ),
                format!("/{path} mode {:04o}", node.info.mode),
            )
        });
    }
    omitted
}

fn image_age(
    config: &ImageConfig,
    options: &LintOptions,
    out: &mut Vec<LintFinding>,
) -> Option<u64> {
    let created = config
        .created
        .as_deref()
        .and_then(Timestamp::parse)
        .filter(|t| t.0 > 0)?;
    let secs = options.now.saturating_sub(created.0).max(0);
    let days = u64::try_from(secs / 86_400).unwrap_or(0);
    if days > options.max_age_days {
        out.push(finding(
            "image-age",
            LintSeverity::Low,
            format!(
                "the image was built {days} days ago (more than {}); rebuild it to pick up fixes",
                options.max_age_days
            ),
            format!("created {}", created.to_rfc3339()),
        ));
    }
    Some(days)
}

/// `s` cut to at most `max` bytes at a character boundary, with `…` when
/// cut.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or(""))
}

/// Secret values seen, to scrub from the output.
#[derive(Default)]
struct Secrets {
    all: HashSet<String>,
    /// The first [`MAX_SCRUB_SUBSTRINGS`], longest first when scrubbing.
    substrings: Vec<String>,
}

impl Secrets {
    fn add(&mut self, value: &str) {
        if value.len() < MIN_SCRUB_LEN || self.all.contains(value) {
            return;
        }
        self.all.insert(value.to_owned());
        if self.substrings.len() < MAX_SCRUB_SUBSTRINGS {
            self.substrings.push(value.to_owned());
        }
    }

    /// `text` with every known secret replaced: the first
    /// [`MAX_SCRUB_SUBSTRINGS`] wherever they occur, all of them as whole
    /// words (split at whitespace, quotes and `=`).
    fn scrub(&self, text: &str) -> String {
        if self.all.is_empty() {
            return text.to_owned();
        }
        let mut text = text.to_owned();
        let mut subs: Vec<&String> = self.substrings.iter().collect();
        subs.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in subs {
            if text.contains(s.as_str()) {
                text = text.replace(s.as_str(), REDACTED);
            }
        }
        let is_sep = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '=');
        let mut out = String::with_capacity(text.len());
        let mut word = String::new();
        for c in text.chars() {
            if is_sep(c) {
                self.flush(&mut out, &mut word);
                out.push(c);
            } else {
                word.push(c);
            }
        }
        self.flush(&mut out, &mut word);
        out
    }

    fn flush(&self, out: &mut String, word: &mut String) {
        if self.all.contains(word.as_str()) {
            out.push_str(REDACTED);
        } else {
            out.push_str(word);
        }
        word.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Content, Entry, FileInfo, Limits};

    fn config(json: &str) -> ImageConfig {
        ImageConfig::parse(json.as_bytes()).unwrap()
    }

    fn ids(r: &LintReport) -> Vec<&'static str> {
        r.findings.iter().map(|f| f.id).collect()
    }

    const NOW: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z

    #[test]
    fn root_user_rule() {
        for (user, root) in [
            ("", true),
            (r#","User":"root""#, true),
            (r#","User":"0""#, true),
            (r#","User":"0:0""#, true),
            (r#","User":"root:wheel""#, true),
            (r#","User":"app""#, false),
            (r#","User":"1000:1000""#, false),
        ] {
            let c = config(&format!(r#"{{"config":{{"Env":[]{user}}}}}"#));
            let r = lint(&c, None, &LintOptions::at(NOW));
            assert_eq!(ids(&r).contains(&"root-user"), root, "{user}");
        }
        let r = lint(&config("{}"), None, &LintOptions::at(NOW));
        assert_eq!(r.findings[0].evidence, "USER not set");
        assert_eq!(r.findings[0].severity, LintSeverity::Medium);
        let r = lint(
            &config(r#"{"config":{"User":"0:0"}}"#),
            None,
            &LintOptions::at(NOW),
        );
        assert_eq!(r.findings[0].evidence, "USER 0:0");
    }

    #[test]
    fn secret_names() {
        for name in [
            "DB_PASSWORD",
            "MYSQL_ROOT_PASSWORD",
            "passwd",
            "SECRET_KEY_BASE",
            "GITHUB_TOKEN",
            "NPM_AUTHTOKEN",
            "STRIPE_API_KEY",
            "apikey",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "SSH_PRIVATE_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS_JSON",
            "--password",
            "api-key",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "PATH",
            "HOME",
            "PWD",
            "TOKENIZERS_PARALLELISM",
            "POSTGRES_PASSWORD_FILE",
            "SECRETS_DIR",
            "GPG_KEY",
            "LANG",
            "",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn secret_env_names_the_variable_never_the_value() {
        let c = config(
            r#"{"config":{"User":"app","Env":["PATH=/usr/bin","DB_PASSWORD=hunter2",
            "EMPTY_TOKEN=","POSTGRES_PASSWORD_FILE=/run/secrets/pw",
            "TLS_KEY=-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----",
            "ID=AKIAIOSFODNN7EXAMPLE","DB_PASSWORD=hunter2"]}}"#,
        );
        let r = lint(&c, None, &LintOptions::at(NOW));
        let env: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.id == "secret-env")
            .map(|f| f.evidence.as_str())
            .collect();
        assert_eq!(env, ["DB_PASSWORD", "ID", "TLS_KEY"]);
        assert!(r.findings.iter().all(|f| f.severity == LintSeverity::High));
        let text = serde_json::to_string(&r).unwrap();
        for secret in ["hunter2", "MIIEabc", "AKIAIOSFODNN7EXAMPLE"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(r.counts.high, 3);
    }

    #[test]
    fn history_is_redacted() {
        let r = redact_command(
            "RUN |2 DB_PASSWORD=hunter2 VERSION=1.2 /bin/sh -c curl -u x --password s3cr3t \
             https://h && echo \"API_KEY=abc def\" && export TOKEN='a b c' done",
        );
        assert_eq!(
            r.text,
            "RUN |2 DB_PASSWORD=<redacted> VERSION=1.2 /bin/sh -c curl -u x --password \
             <redacted> https://h && echo \"API_KEY=<redacted> && export TOKEN=<redacted> done"
        );
        assert_eq!(r.names, ["DB_PASSWORD", "password", "API_KEY", "TOKEN"]);
        for v in ["hunter2", "s3cr3t", "abc", "a b c"] {
            assert!(!r.text.contains(v), "{v}");
        }

        let legacy = redact_command("/bin/sh -c #(nop)  ENV DB_PASSWORD hunter2");
        assert_eq!(legacy.text, "/bin/sh -c #(nop) ENV DB_PASSWORD <redacted>");

        let key = redact_command(
            "RUN echo '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----' > /k",
        );
        assert_eq!(key.text, "RUN echo '<redacted>' > /k");
        assert_eq!(key.names, ["private key"]);

        let cert = redact_command("RUN echo -----BEGIN CERTIFICATE----- x");
        assert!(cert.names.is_empty());
        assert_eq!(cert.text, "RUN echo -----BEGIN CERTIFICATE----- x");

        let aws = redact_command("RUN aws configure set id AKIAIOSFODNN7EXAMPLE");
        assert!(!aws.text.contains("AKIA"));

        let clean = redact_command("/bin/sh -c apt-get install -y curl");
        assert!(clean.names.is_empty());
    }

    #[test]
    fn history_findings_point_at_the_step() {
        let c = config(
            r#"{"config":{"User":"app"},"history":[
            {"created_by":"ADD rootfs /"},
            {"created_by":"ENV DB_PASSWORD=hunter2","empty_layer":true},
            {"created_by":"RUN |1 GITHUB_TOKEN=ghp_abcdef /bin/sh -c make"}]}"#,
        );
        let r = lint(&c, None, &LintOptions::at(NOW));
        let h: Vec<(Option<usize>, &str)> = r
            .findings
            .iter()
            .filter(|f| f.id == "secret-in-history")
            .map(|f| (f.history_index, f.evidence.as_str()))
            .collect();
        assert_eq!(
            h,
            [
                (Some(1), "ENV DB_PASSWORD=<redacted>"),
                (Some(2), "RUN |1 GITHUB_TOKEN=<redacted> /bin/sh -c make"),
            ]
        );
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("hunter2") && !text.contains("ghp_abcdef"));
    }

    #[test]
    fn env_secret_scrubbed_from_other_text() {
        // A history step with the env's value in an odd place.
        let c = config(
            r#"{"config":{"User":"app","Env":["DB_PASSWORD=hunter2"]},
            "history":[{"created_by":"RUN --password=x echo hunter2"}]}"#,
        );
        let r = lint(&c, None, &LintOptions::at(NOW));
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn exposed_ports_rule() {
        let c = config(
            r#"{"config":{"User":"app","ExposedPorts":{"22/tcp":{},"23":{},"22/udp":{},"80/tcp":{}}}}"#,
        );
        let r = lint(&c, None, &LintOptions::at(NOW));
        assert_eq!(ids(&r), ["telnet-port-exposed", "ssh-port-exposed"]);
        assert_eq!(r.findings[1].evidence, "ExposedPorts 22/tcp");
        assert_eq!(r.findings[0].evidence, "ExposedPorts 23/tcp");
    }

    fn entry(path: &str, kind: EntryKind, mode: u32) -> Entry {
        Entry {
            path: path.into(),
            info: FileInfo {
                kind,
                mode,
                uid: 0,
                gid: 0,
                size: 1,
            },
            content: Content::Skipped,
        }
    }

    #[test]
    fn setuid_rule_uses_the_squashed_tree() {
        let mut s = Squash::new(&Limits::default());
        s.begin_layer();
        s.apply(entry("usr/bin/su", EntryKind::File, 0o4755))
            .unwrap();
        s.apply(entry("usr/bin/chfn", EntryKind::File, 0o4755))
            .unwrap();
        s.apply(entry("usr/bin/ls", EntryKind::File, 0o755))
            .unwrap();
        s.apply(entry("tmp", EntryKind::Dir, 0o1777)).unwrap();
        s.apply(entry("var/mail", EntryKind::Dir, 0o2775)).unwrap();
        s.end_layer();
        s.begin_layer();
        s.apply(entry("usr/bin/wall", EntryKind::File, 0o2755))
            .unwrap();
        s.apply(entry("opt/tool", EntryKind::File, 0o6755)).unwrap();
        // chmod u-s in a later layer, and a whiteout.
        s.apply(entry("usr/bin/chfn", EntryKind::File, 0o755))
            .unwrap();
        s.apply(entry("usr/bin/.wh.su", EntryKind::File, 0))
            .unwrap();
        s.end_layer();
        let c = config(r#"{"config":{"User":"app"}}"#);
        let r = lint(&c, Some(&s), &LintOptions::at(NOW));
        let got: Vec<(&str, &str, Option<usize>)> = r
            .findings
            .iter()
            .map(|f| (f.id, f.evidence.as_str(), f.layer))
            .collect();
        assert_eq!(
            got,
            [
                ("setuid-binary", "/opt/tool mode 6755", Some(1)),
                ("setgid-binary", "/usr/bin/wall mode 2755", Some(1)),
            ]
        );
        assert_eq!(r.counts.medium, 1);
        assert_eq!(r.counts.low, 1);
    }

    #[test]
    fn setuid_findings_are_bounded() {
        let mut s = Squash::new(&Limits::default());
        s.begin_layer();
        for i in 0..MAX_FILE_FINDINGS + 5 {
            s.apply(entry(&format!("bin/f{i:04}"), EntryKind::File, 0o4755))
                .unwrap();
        }
        s.end_layer();
        let c = config(r#"{"config":{"User":"app"}}"#);
        let r = lint(&c, Some(&s), &LintOptions::at(NOW));
        assert_eq!(r.findings.len(), MAX_FILE_FINDINGS);
        assert_eq!(r.omitted, 5);
    }

    #[test]
    fn secret_findings_are_bounded_and_scrubbed() {
        let n = MAX_SECRET_FINDINGS + MAX_SCRUB_SUBSTRINGS + 10;
        let c = ImageConfig {
            user: Some("app".into()),
            env: (0..n)
                .map(|i| format!("P{i}_PASSWORD=value{i:06}"))
                .collect(),
            history: (0..MAX_SECRET_FINDINGS + 3)
                .map(|i| crate::image::HistoryEntry {
                    // The last env value, in a place redaction does not see.
                    created_by: Some(format!("RUN --token=t{i:06} echo value{:06}", n - 1)),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let r = lint(&c, None, &LintOptions::at(NOW));
        assert_eq!(r.findings.len(), 2 * MAX_SECRET_FINDINGS);
        assert_eq!(r.omitted, n - MAX_SECRET_FINDINGS + 3);
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("value"), "{text}");
    }

    #[test]
    fn image_age_rule() {
        let at = |created: &str, max: u64| {
            let c = config(&format!(
                r#"{{"created":"{created}","config":{{"User":"app"}}}}"#
            ));
            lint(
                &c,
                None,
                &LintOptions {
                    now: NOW,
                    max_age_days: max,
                },
            )
        };
        let old = at("2023-06-01T12:00:00Z", 365);
        assert_eq!(old.image_age_days, Some(579));
        assert_eq!(ids(&old), ["image-age"]);
        assert_eq!(old.findings[0].evidence, "created 2023-06-01T12:00:00Z");
        assert_eq!(old.findings[0].severity, LintSeverity::Low);

        let fresh = at("2024-12-01T00:00:00Z", 365);
        assert_eq!(fresh.image_age_days, Some(31));
        assert!(fresh.findings.is_empty());
        assert!(!at("2024-12-01T00:00:00Z", 30).findings.is_empty());
        // Exactly at the threshold is not older than it.
        assert!(at("2024-12-01T00:00:00Z", 31).findings.is_empty());

        for unknown in ["1970-01-01T00:00:00Z", "yesterday", ""] {
            let r = at(unknown, 365);
            assert_eq!(r.image_age_days, None, "{unknown}");
            assert!(r.findings.is_empty());
        }
        assert_eq!(at("2030-01-01T00:00:00Z", 365).image_age_days, Some(0));
    }

    #[test]
    fn hostile_strings_do_not_panic() {
        let long = "é".repeat(10_000);
        let c = ImageConfig {
            user: Some(long.clone()),
            env: vec![
                format!("{long}_PASSWORD={long}"),
                "=".into(),
                "PASSWORD".into(),
                "-----BEGIN ".into(),
            ],
            exposed_ports: vec![long.clone(), "/".into(), "22/".into()],
            history: vec![crate::image::HistoryEntry {
                created_by: Some(format!(
                    "-----BEGIN -----BEGIN PRIVATE KEY {long} TOKEN=\"{long} --token"
                )),
                ..Default::default()
            }],
            created: Some(long.clone()),
            ..Default::default()
        };
        let r = lint(&c, None, &LintOptions::at(i64::MIN));
        assert!(r.findings.iter().all(|f| f.evidence.len() < 1024));
        assert!(r.findings.iter().any(|f| f.id == "secret-in-history"));
    }
}
