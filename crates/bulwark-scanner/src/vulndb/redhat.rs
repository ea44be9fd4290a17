//! Red Hat CSAF 2.0 documents: VEX (`csaf_vex`, one per CVE) and security
//! advisories (`csaf_security_advisory`, one per RHSA).
//!
//! What is read, and only that:
//!
//! - `document.tracking.id` is the advisory id (`CVE-2023-38545` for VEX,
//!   `RHSA-2024:6163` for advisories); the CVEs of `vulnerabilities[]`
//!   other than the id become aliases. `document.title` → summary, the
//!   `summary`/`general`/`description` notes → details, tracking
//!   `initial_release_date`/`current_release_date` → published/modified,
//!   `document.references` and remediation URLs → references.
//! - Severity: `document.aggregate_severity.text`, else the highest
//!   `threats[category=impact]` of any vulnerability, mapped with
//!   [`severity::redhat_impact`]. Each range gets the impact that names its
//!   product (or the vulnerability's general impact). `scores[].cvss_v3`
//!   and `cvss_v2` vectors are recomputed into [`Advisory::cvss`].
//! - `product_tree`: products of any branch depth with their
//!   `product_identification_helper` (`cpe` for platforms, `purl` for
//!   packages), and `relationships` that make
//!   `<platform>:<component>` product ids. Every product id in
//!   `product_status` is resolved through a relationship to a platform
//!   CPE and an RPM component; ids that do not resolve (`Text-Only JBCS`)
//!   or whose component is not an RPM are ignored.
//! - Ecosystem: `Red Hat:` + the CPE after `cpe:/<part>:redhat:` (the OSV
//!   convention): `cpe:/o:redhat:enterprise_linux:9::baseos` →
//!   `Red Hat:enterprise_linux:9::baseos`.
//! - Package: the RPM name from the purl (`pkg:rpm/redhat/curl@…`), else
//!   parsed from the component id. Red Hat lists binary RPMs (and the
//!   source RPM, `arch=src`); arches collapse into one range per name.
//!   Matching by binary name is exact here, so names are kept as listed.
//! - `product_status`: `fixed`/`first_fixed` → `introduced "0"`,
//!   `fixed <[epoch:]version-release>` (epoch omitted when 0);
//!   `known_affected`/`last_affected` → `unfixed`; `known_not_affected` →
//!   `not_affected`; `under_investigation` and other lists are ignored.
//!   Within one advisory, when the same (ecosystem, package) is both
//!   affected/fixed somewhere and not affected elsewhere (a source RPM not
//!   affected while its binary is fixed), the not-affected row is dropped.
//!   Several fixed versions for one (ecosystem, package) (a CPE shared by
//!   the 9.2 EUS and 9.3 streams) collapse to the newest, by RPM
//!   ordering: the union of `[0, fix)` ranges is the range to the newest
//!   fix. So there is at most one fixed, one unfixed and one
//!   not-affected range per (ecosystem, package) and advisory.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::model::{
    Advisory, AffectedRange, Event, FeedSource, MAX_ALIASES, MAX_CVSS, MAX_DETAILS_BYTES,
    MAX_REFERENCES, MAX_SUMMARY_BYTES, RangeKind, Timestamp, push_unique, truncate, valid_token,
};
use super::severity::{self, CvssScore, Severity};
use super::{Parsed, Record};
use crate::version::Ecosystem;

/// Branch nesting deeper than this is not followed.
const MAX_DEPTH: usize = 16;

/// Whether a JSON document is a CSAF document.
pub(crate) fn looks_like(value: &Value) -> bool {
    value
        .get("document")
        .is_some_and(|d| d.get("csaf_version").is_some() && d.get("tracking").is_some())
}

struct Product {
    cpe: Option<String>,
    purl: Option<String>,
}

/// (ecosystem, package) → (state, fixed version or "") → impact.
type Found = BTreeMap<(String, String), BTreeMap<(State, String), Option<Severity>>>;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Fixed,
    Affected,
    NotAffected,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().map(str::trim).filter(|s| !s.is_empty())
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(crate) fn parse(doc: Value) -> Result<Parsed, String> {
    let id = str_at(&doc, &["document", "tracking", "id"])
        .ok_or("CSAF document without tracking id")?
        .to_owned();
    if !valid_token(&id) {
        return Err("CSAF document with an invalid tracking id".to_owned());
    }
    let document = doc.get("document").unwrap_or(&Value::Null);

    let mut products: HashMap<&str, Product> = HashMap::new();
    if let Some(tree) = doc.get("product_tree") {
        collect_products(array(tree, "branches"), 0, &mut products);
        for p in array(tree, "full_product_names") {
            add_product(p, &mut products);
        }
    }
    let mut relations: HashMap<&str, (&str, &str)> = HashMap::new();
    if let Some(tree) = doc.get("product_tree") {
        for r in array(tree, "relationships") {
            if let (Some(pid), Some(component), Some(platform)) = (
                str_at(r, &["full_product_name", "product_id"]),
                str_at(r, &["product_reference"]),
                str_at(r, &["relates_to_product_reference"]),
            ) {
                relations.insert(pid, (component, platform));
            }
        }
    }

    let mut aliases = Vec::new();
    let mut cvss: Vec<CvssScore> = Vec::new();
    let mut references = Vec::new();
    let mut vuln_impact: Option<Severity> = None;
    let mut found: Found = BTreeMap::new();

    for r in array(document, "references") {
        if let Some(url) = str_at(r, &["url"]) {
            push_unique(&mut references, url, MAX_REFERENCES);
        }
    }

    for vuln in array(&doc, "vulnerabilities") {
        if let Some(cve) = str_at(vuln, &["cve"])
            && valid_token(cve)
            && cve != id
        {
            push_unique(&mut aliases, cve, MAX_ALIASES);
        }
        for s in array(vuln, "scores") {
            for key in ["cvss_v3", "cvss_v2"] {
                if let Some(c) = str_at(s, &[key, "vectorString"]).and_then(CvssScore::from_vector)
                    && cvss.len() < MAX_CVSS
                    && !cvss.iter().any(|x| x.vector == c.vector)
                {
                    cvss.push(c);
                }
            }
        }
        for r in array(vuln, "remediations") {
            if let Some(url) = str_at(r, &["url"]) {
                push_unique(&mut references, url, MAX_REFERENCES);
            }
        }
        // Impact per product id, and the vulnerability-wide impact.
        let mut general = None;
        let mut per_product: HashMap<&str, Severity> = HashMap::new();
        for t in array(vuln, "threats") {
            if str_at(t, &["category"]) != Some("impact") {
                continue;
            }
            let Some(sev) = str_at(t, &["details"]).and_then(severity::redhat_impact) else {
                continue;
            };
            let ids = array(t, "product_ids");
            if ids.is_empty() {
                general = general.max(Some(sev));
            } else {
                for pid in ids.iter().filter_map(Value::as_str) {
                    per_product.insert(pid, sev);
                }
            }
            vuln_impact = vuln_impact.max(Some(sev));
        }
        let Some(status) = vuln.get("product_status") else {
            continue;
        };
        for (list, state) in [
            ("fixed", State::Fixed),
            ("first_fixed", State::Fixed),
            ("known_affected", State::Affected),
            ("last_affected", State::Affected),
            ("known_not_affected", State::NotAffected),
        ] {
            for pid in array(status, list).iter().filter_map(Value::as_str) {
                let Some(&(component, platform)) = relations.get(pid) else {
                    continue;
                };
                let Some(ecosystem) = products
                    .get(platform)
                    .and_then(|p| p.cpe.as_deref())
                    .and_then(cpe_ecosystem)
                else {
                    continue;
                };
                let purl = products.get(component).and_then(|p| p.purl.as_deref());
                let Some((name, evr)) = rpm_identity(component, purl) else {
                    continue;
                };
                let version = match (state, evr) {
                    (State::Fixed, Some(v)) => v,
                    (State::Fixed, None) => continue,
                    (_, _) => String::new(),
                };
                let sev = per_product.get(pid).copied().or(general);
                let slot = found
                    .entry((ecosystem, name))
                    .or_default()
                    .entry((state, version))
                    .or_default();
                *slot = (*slot).max(sev);
            }
        }
    }

    let mut ranges = Vec::new();
    for ((ecosystem, package), states) in found {
        let has_affected = states.keys().any(|(s, _)| *s != State::NotAffected);
        let newest_fix = states
            .keys()
            .filter(|(s, _)| *s == State::Fixed)
            .map(|(_, v)| v.as_str())
            .reduce(|a, b| match Ecosystem::Rpm.compare(a, b) {
                Ok(Ordering::Less) => b,
                _ => a,
            })
            .map(str::to_owned);
        for ((state, version), sev) in states {
            if state == State::NotAffected && has_affected {
                continue;
            }
            if state == State::Fixed && newest_fix.as_ref() != Some(&version) {
                continue;
            }
            let (events, fixed_version, unfixed, not_affected) = match state {
                State::Fixed => (
                    vec![
                        Event::Introduced("0".to_owned()),
                        Event::Fixed(version.clone()),
                    ],
                    Some(version),
                    false,
                    false,
                ),
                State::Affected => (vec![Event::Introduced("0".to_owned())], None, true, false),
                State::NotAffected => (Vec::new(), None, false, true),
            };
            ranges.push(AffectedRange {
                source: FeedSource::RedHatCsaf,
                advisory_id: id.clone(),
                ecosystem: ecosystem.clone(),
                package: package.clone(),
                kind: RangeKind::Ecosystem,
                events,
                versions: Vec::new(),
                fixed_version,
                unfixed,
                not_affected,
                severity: sev,
            });
        }
    }

    let details = array(document, "notes")
        .iter()
        .filter(|n| {
            matches!(
                str_at(n, &["category"]),
                Some("summary" | "general" | "description")
            )
        })
        .filter_map(|n| str_at(n, &["text"]))
        .collect::<Vec<_>>()
        .join("\n\n");
    let severity = str_at(document, &["aggregate_severity", "text"])
        .and_then(severity::redhat_impact)
        .or(vuln_impact);
    let advisory = Advisory {
        source: FeedSource::RedHatCsaf,
        id,
        aliases,
        summary: str_at(document, &["title"]).map(|s| truncate(s.to_owned(), MAX_SUMMARY_BYTES)),
        details: (!details.is_empty()).then(|| truncate(details, MAX_DETAILS_BYTES)),
        published: str_at(document, &["tracking", "initial_release_date"])
            .and_then(Timestamp::parse),
        modified: str_at(document, &["tracking", "current_release_date"])
            .and_then(Timestamp::parse),
        withdrawn: None,
        severity,
        cvss,
        references,
    };
    Ok(Parsed {
        records: 1,
        units: vec![Record { advisory, ranges }],
        warnings: Vec::new(),
    })
}

fn collect_products<'a>(branches: &'a [Value], depth: usize, out: &mut HashMap<&'a str, Product>) {
    if depth > MAX_DEPTH {
        return;
    }
    for b in branches {
        if let Some(p) = b.get("product") {
            add_product(p, out);
        }
        collect_products(array(b, "branches"), depth + 1, out);
    }
}

fn add_product<'a>(p: &'a Value, out: &mut HashMap<&'a str, Product>) {
    if let Some(pid) = str_at(p, &["product_id"]) {
        out.insert(
            pid,
            Product {
                cpe: str_at(p, &["product_identification_helper", "cpe"]).map(str::to_owned),
                purl: str_at(p, &["product_identification_helper", "purl"]).map(str::to_owned),
            },
        );
    }
}

/// `cpe:/o:redhat:enterprise_linux:9::baseos` →
/// `Red Hat:enterprise_linux:9::baseos`; CPE 2.3 (`cpe:2.3:o:redhat:…`)
/// is reduced to the same form (`*`/`-` fields emptied, trailing empty
/// fields dropped).
pub fn cpe_ecosystem(cpe: &str) -> Option<String> {
    let rest = if let Some(r) = cpe.strip_prefix("cpe:/") {
        let mut parts = r.splitn(3, ':');
        let (_part, _vendor, rest) = (parts.next()?, parts.next()?, parts.next()?);
        rest.to_owned()
    } else if let Some(r) = cpe.strip_prefix("cpe:2.3:") {
        let fields: Vec<&str> = r.split(':').collect();
        let mut kept: Vec<&str> = fields
            .get(2..fields.len().min(7))?
            .iter()
            .map(|f| if matches!(*f, "*" | "-") { "" } else { f })
            .collect();
        while kept.last().is_some_and(|f| f.is_empty()) {
            kept.pop();
        }
        kept.join(":")
    } else {
        return None;
    };
    let eco = format!("Red Hat:{rest}");
    (rest.split(':').next().is_some_and(|p| !p.is_empty()) && valid_token(&eco)).then_some(eco)
}

/// The RPM name and `[epoch:]version-release` of a component, from its
/// purl when it has one, else from an id such as
/// `bind-32:9.8.2-0.68.rc1.el6_10.17.i686` or a bare name (`libcurl`).
fn rpm_identity(component: &str, purl: Option<&str>) -> Option<(String, Option<String>)> {
    if let Some(purl) = purl {
        let rest = purl.strip_prefix("pkg:rpm/")?;
        let (path, qualifiers) = rest.split_once('?').unwrap_or((rest, ""));
        let (path, version) = match path.split_once('@') {
            Some((p, v)) => (p, Some(percent_decode(v)?)),
            None => (path, None),
        };
        let name = percent_decode(path.rsplit('/').next()?)?;
        let epoch = qualifiers
            .split('&')
            .find_map(|q| q.strip_prefix("epoch="))
            .filter(|e| !e.is_empty() && *e != "0" && e.bytes().all(|b| b.is_ascii_digit()));
        let evr = version.map(|v| match epoch {
            Some(e) => format!("{e}:{v}"),
            None => v,
        });
        return (valid_token(&name) && evr.as_deref().is_none_or(valid_token))
            .then_some((name, evr));
    }
    // name-[epoch:]version-release.arch, or a bare name.
    const ARCHES: &[&str] = &[
        "src", "noarch", "x86_64", "i686", "i386", "aarch64", "ppc64le", "ppc64", "ppc", "s390x",
        "s390",
    ];
    let without_arch = match component.rsplit_once('.') {
        Some((head, arch)) if ARCHES.contains(&arch) => head,
        _ => component,
    };
    let parsed = without_arch
        .rsplit_once('-')
        .and_then(|(name_ev, release)| {
            let (name, ev) = name_ev.rsplit_once('-')?;
            let (epoch, version) = match ev.split_once(':') {
                Some((e, v)) if e.bytes().all(|b| b.is_ascii_digit()) => (Some(e), v),
                Some(_) => return None,
                None => (None, ev),
            };
            if !version.starts_with(|c: char| c.is_ascii_digit()) || name.is_empty() {
                return None;
            }
            let evr = match epoch {
                Some(e) if e != "0" => format!("{e}:{version}-{release}"),
                _ => format!("{version}-{release}"),
            };
            Some((name.to_owned(), Some(evr)))
        });
    let (name, evr) = parsed.unwrap_or_else(|| (without_arch.to_owned(), None));
    (valid_token(&name) && evr.as_deref().is_none_or(valid_token)).then_some((name, evr))
}

/// Decodes `%XX` escapes; `None` on a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpes() {
        assert_eq!(
            cpe_ecosystem("cpe:/o:redhat:enterprise_linux:9::baseos").as_deref(),
            Some("Red Hat:enterprise_linux:9::baseos")
        );
        assert_eq!(
            cpe_ecosystem("cpe:/o:redhat:enterprise_linux:8").as_deref(),
            Some("Red Hat:enterprise_linux:8")
        );
        assert_eq!(
            cpe_ecosystem("cpe:2.3:o:redhat:enterprise_linux:9:*:*:*:*:*:*:*").as_deref(),
            Some("Red Hat:enterprise_linux:9")
        );
        assert_eq!(cpe_ecosystem("nope"), None);
        assert_eq!(cpe_ecosystem("cpe:/o:redhat"), None);
    }

    #[test]
    fn rpm_identities() {
        assert_eq!(
            rpm_identity(
                "x",
                Some("pkg:rpm/redhat/ruby@2.7.8-139.module%2Bel8.8.0?arch=aarch64&rpmmod=ruby:2.7")
            ),
            Some((
                "ruby".to_owned(),
                Some("2.7.8-139.module+el8.8.0".to_owned())
            ))
        );
        assert_eq!(
            rpm_identity(
                "x",
                Some("pkg:rpm/redhat/bind@9.8.2-0.68?arch=src&epoch=32")
            ),
            Some(("bind".to_owned(), Some("32:9.8.2-0.68".to_owned())))
        );
        assert_eq!(
            rpm_identity("x", Some("pkg:rpm/redhat/libcurl")),
            Some(("libcurl".to_owned(), None))
        );
        assert_eq!(rpm_identity("x", Some("pkg:oci/foo@sha256:1")), None);
        assert_eq!(
            rpm_identity("bind-utils-32:9.8.2-0.68.rc1.el6_10.17.i686", None),
            Some((
                "bind-utils".to_owned(),
                Some("32:9.8.2-0.68.rc1.el6_10.17".to_owned())
            ))
        );
        assert_eq!(
            rpm_identity("curl-0:7.76.1-26.el9_3.2.src", None),
            Some(("curl".to_owned(), Some("7.76.1-26.el9_3.2".to_owned())))
        );
        assert_eq!(
            rpm_identity("libcurl", None),
            Some(("libcurl".to_owned(), None))
        );
        assert_eq!(rpm_identity("x", Some("pkg:rpm/redhat/a@%zz")), None);
    }
}
