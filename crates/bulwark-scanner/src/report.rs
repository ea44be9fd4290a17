//! Vulnerability findings for a scanned image: matching its inventory
//! against a [`VulnStore`], counts by severity, the health grade and the
//! outdated packages.
//!
//! # Which feed answers for which package
//!
//! | package | looked up in ecosystem | by name | version compared |
//! |---|---|---|---|
//! | dpkg | `Debian:<release>` (`Debian:12`, or a codename's number: `trixie` → `13`; tracker and OSV) | source package (`Source:`, else the binary name) | source version (else the binary version) |
//! | apk | `Alpine:<x.y branch>` (`Alpine:v3.18`, `Alpine:edge`) | origin (else the name) | package version |
//! | dpkg (Ubuntu) | `Ubuntu:<VERSION_ID>` and `Ubuntu:<VERSION_ID>:LTS` (not `Ubuntu:Pro:…`) | source package | source version |
//! | rpm | `<distro>:<major>`; for RHEL also Red Hat CSAF's `Red Hat:enterprise_linux:<major>` and `…:<major>::<repo>` (`baseos`, `appstream`, `crb`, …; not EUS/ELS streams) | source RPM name (else the name) | version |
//! | python / npm / cargo / composer / gem / go / maven | `PyPI`, `npm`, `crates.io`, `Packagist`, `RubyGems`, `Go`, `Maven` | name | version |
//!
//! The distro release comes from [`Distro::feed_key`]; OS packages of an
//! image whose release is unknown are not matched (a warning says so).
//! Versions are ordered by the range's ecosystem ([`Ecosystem::from_osv`]),
//! else the package's.
//!
//! # One advisory, one package
//!
//! Several ranges of one advisory can apply to one package. For OSV and
//! CSAF they are alternatives (the package is affected if any range says
//! so; the reported fix is the highest fix over the matching ranges, none
//! if one of them has no fix). For the distro feeds they are fix entries of
//! one CVE (Alpine lists some twice), so the package is affected only if
//! every entry says so, and the fix reported is the lowest. A `not_affected`
//! range (`fixed "0"`) never matches; an unfixed range matches with no fix.
//!
//! # Duplicates
//!
//! A distro feed that says the installed version is not affected (a
//! `fixed "0"` marker, or a fix at or below it) also clears OSV findings of
//! the same vulnerability for that package: the distribution knows its own
//! patches.
//!
//! The same vulnerability from two feeds (the Debian tracker's and OSV's
//! `CVE-2023-4641` for one `shadow` package, a GHSA and its CVE alias) is
//! one finding: findings of one package whose ids or aliases overlap are
//! merged, keeping the distro feed's (then the lower id's) finding and
//! filling its missing severity and dates from the others, which are listed
//! in `also_reported_by`.
//!
//! # Health grade
//!
//! Red Hat's Container Health Index: only findings with a fixed version
//! (fixable but not applied) and severity Critical or High ("Important")
//! count, by the age of the advisory (its `published` date, else
//! `modified`) at `now`:
//!
//! | grade | Critical | High |
//! |---|---|---|
//! | A | none | none |
//! | B | ≤ 7 days | ≤ 30 days |
//! | C | ≤ 30 days | ≤ 90 days |
//! | D | ≤ 90 days | ≤ 365 days |
//! | E | ≤ 365 days | ≤ 730 days |
//! | F | older | older |
//!
//! The image gets the worst grade over its counting findings. An advisory
//! without any date counts as older than every bound (grade F).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::distro::Distro;
use crate::image::{ImagePackage, ScannedImage};
use crate::inventory::PackageKind;
use crate::version::Ecosystem;
use crate::vulndb::debian::debian_release;
use crate::vulndb::store::{Candidate, StoreResult, VulnStore, holds_parts};
use crate::vulndb::{AffectedRange, FeedSource, MatchResult, Severity, Timestamp, affects};

/// Seconds in a day.
const DAY: i64 = 86_400;

/// One vulnerability of one package of the image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The advisory's id (`CVE-2023-4641`, `GHSA-…`, `DSA-5587-1`).
    pub id: String,
    /// Other ids of the vulnerability (the advisory's aliases and the ids
    /// of merged duplicates), sorted.
    pub aliases: Vec<String>,
    /// The installed package's name (binary package for dpkg/apk).
    pub package: String,
    /// `dpkg`, `apk`, `python`, … ([`PackageKind::name`]).
    pub kind: &'static str,
    /// The name the advisory uses (source package for dpkg/apk).
    pub advisory_package: String,
    pub installed_version: String,
    /// `None`: no fix published (unfixed / open).
    pub fixed_version: Option<String>,
    /// `critical`, `high`, `medium`, `low`, `none`; `None` when unknown.
    pub severity: Option<&'static str>,
    /// Index of the layer that introduced the package.
    pub layer: usize,
    /// That layer's `diff_id` (its blob digest when the config lists none).
    pub layer_diff_id: String,
    /// The feed: `debian-tracker`, `alpine-secdb`, `osv`, `redhat-csaf`.
    pub source: &'static str,
    /// The ecosystem the advisory matched in (`Debian:12`, `PyPI`).
    pub ecosystem: String,
    /// RFC 3339, when the advisory has one.
    pub published: Option<String>,
    pub modified: Option<String>,
    pub summary: Option<String>,
    /// Duplicates merged into this finding: `osv:CVE-2023-4641`.
    pub also_reported_by: Vec<String>,
    /// File the package was read from.
    pub path: String,
    #[serde(skip)]
    pub(crate) severity_rank: Option<Severity>,
    #[serde(skip)]
    pub(crate) date: Option<Timestamp>,
    #[serde(skip)]
    package_index: usize,
    #[serde(skip)]
    feed: FeedSource,
}

impl Finding {
    /// The normalised severity.
    pub fn severity_level(&self) -> Option<Severity> {
        self.severity_rank
    }
}

/// Findings per severity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeverityCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub none: u64,
    pub unknown: u64,
}

/// A letter of the health index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Grade {
    A,
    B,
    C,
    D,
    E,
    F,
}

impl Grade {
    pub fn as_str(&self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
            Grade::E => "E",
            Grade::F => "F",
        }
    }

    /// The grade one fixable finding of `severity`, `age` seconds old
    /// (`None`: unknown), gives; `A` for severities that do not count.
    pub fn of(severity: Option<Severity>, age: Option<i64>) -> Grade {
        let bounds: [i64; 4] = match severity {
            Some(Severity::Critical) => [7, 30, 90, 365],
            Some(Severity::High) => [30, 90, 365, 730],
            _ => return Grade::A,
        };
        let Some(age) = age else {
            return Grade::F;
        };
        let grades = [Grade::B, Grade::C, Grade::D, Grade::E];
        for (bound, grade) in bounds.iter().zip(grades) {
            if age <= bound * DAY {
                return grade;
            }
        }
        Grade::F
    }
}

/// The finding that decided the grade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GradeCause {
    pub id: String,
    pub package: String,
    pub severity: &'static str,
    /// Whole days since the advisory's date; `None` when it has none.
    pub age_days: Option<i64>,
}

/// A package for which a fix exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outdated {
    pub package: String,
    pub kind: &'static str,
    pub installed_version: String,
    /// The highest fixed version over the package's fixable findings: the
    /// upgrade that fixes all of them.
    pub fixed_version: String,
    /// Findings the upgrade fixes.
    pub fixes: u64,
    pub layer: usize,
    pub path: String,
}

/// Totals of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub total: u64,
    pub counts: SeverityCounts,
    /// Findings with a fixed version.
    pub fixable: u64,
    /// Findings with no fix published.
    pub unfixed: u64,
    pub grade: Grade,
    /// The oldest counting finding, for grades B–F.
    pub grade_cause: Option<GradeCause>,
    pub outdated: Vec<Outdated>,
}

/// The findings of one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VulnReport {
    /// Sorted by severity (highest first), then package, then id.
    pub findings: Vec<Finding>,
    pub summary: Summary,
    /// Packages or ranges that could not be matched (unparsable versions,
    /// unknown distro release).
    pub warnings: Vec<String>,
}

/// Matches a scanned image (see the module docs); `now` is Unix seconds.
pub async fn match_image(
    image: &ScannedImage,
    store: &dyn VulnStore,
    now: i64,
) -> StoreResult<VulnReport> {
    let diff_ids: Vec<String> = (0..image.layers.len())
        .map(|i| {
            image
                .config
                .diff_ids
                .get(i)
                .or(image.layers.get(i))
                .map(ToString::to_string)
                .unwrap_or_default()
        })
        .collect();
    match_packages(
        &image.packages,
        image.distro.as_ref(),
        &diff_ids,
        store,
        now,
    )
    .await
}

/// Where to look a package up.
struct Query {
    ecosystem: String,
    name: String,
    version: String,
}

fn query_for(p: &ImagePackage, distro: Option<&Distro>) -> Result<Option<Query>, String> {
    let pkg = &p.package;
    let language = match pkg.kind {
        PackageKind::Python => Some("PyPI"),
        PackageKind::Npm => Some("npm"),
        PackageKind::Cargo => Some("crates.io"),
        PackageKind::Composer => Some("Packagist"),
        PackageKind::RubyGem => Some("RubyGems"),
        PackageKind::Go => Some("Go"),
        PackageKind::Maven => Some("Maven"),
        PackageKind::Dpkg | PackageKind::Apk | PackageKind::Rpm => None,
    };
    if let Some(ecosystem) = language {
        return Ok(Some(Query {
            ecosystem: ecosystem.to_owned(),
            name: pkg.name.clone(),
            version: pkg.version.clone(),
        }));
    }
    let Some(key) = distro.and_then(Distro::feed_key) else {
        return Err(format!(
            "{} {}: distribution release unknown, OS packages not matched",
            pkg.kind, pkg.name
        ));
    };
    let name = pkg.source_name.clone().unwrap_or_else(|| pkg.name.clone());
    let version = match pkg.kind {
        PackageKind::Dpkg => pkg
            .source_version
            .clone()
            .unwrap_or_else(|| pkg.version.clone()),
        _ => pkg.version.clone(),
    };
    // Debian feeds name releases by number; a testing image without VERSION_ID has only
    // its codename (`trixie` → `Debian:13`; `sid` stays `Debian:sid`).
    let ecosystem = if key.ecosystem == "Debian" {
        format!("Debian:{}", debian_release(&key.release))
    } else {
        key.to_string()
    };
    Ok(Some(Query {
        ecosystem,
        name,
        version,
    }))
}

/// Red Hat repositories named in CSAF product CPEs
/// (`cpe:/a:redhat:enterprise_linux:9::appstream`): RHEL 8 and 9, then 7.
const RED_HAT_REPOS: &[&str] = &[
    "baseos",
    "appstream",
    "crb",
    "supplementary",
    "highavailability",
    "resilientstorage",
    "sap",
    "sap_hana",
    "nfv",
    "realtime",
    "server",
    "client",
    "workstation",
    "computenode",
];

/// Every ecosystem name under which feeds describe the release an image
/// query names (see the module docs): Ubuntu's OSV records mark LTS
/// releases (`Ubuntu:22.04:LTS`); Red Hat's CSAF names the platform CPE
/// (`Red Hat:enterprise_linux:9::baseos`) where the image knows `Red Hat:9`.
/// Ubuntu Pro and Red Hat EUS/ELS streams are not included: an image does
/// not say it is entitled to them.
pub fn feed_ecosystems(ecosystem: &str) -> Vec<String> {
    let mut out = vec![ecosystem.to_owned()];
    if let Some(release) = ecosystem.strip_prefix("Ubuntu:")
        && !release.is_empty()
        && !release.contains(':')
    {
        out.push(format!("{ecosystem}:LTS"));
    } else if let Some(major) = ecosystem.strip_prefix("Red Hat:")
        && !major.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
    {
        let platform = format!("Red Hat:enterprise_linux:{major}");
        out.extend(RED_HAT_REPOS.iter().map(|r| format!("{platform}::{r}")));
        out.push(platform);
    }
    out
}

fn feed_rank(source: FeedSource) -> u8 {
    match source {
        FeedSource::DebianTracker | FeedSource::AlpineSecdb | FeedSource::RedHatCsaf => 0,
        FeedSource::Osv => 1,
    }
}

fn compare(eco: Ecosystem, a: &str, b: &str) -> Ordering {
    eco.compare(a, b).unwrap_or_else(|_| a.cmp(b))
}

/// Matches packages (e.g. a stored inventory) against `store`.
/// `diff_ids[i]` names layer `i`.
pub async fn match_packages(
    packages: &[ImagePackage],
    distro: Option<&Distro>,
    diff_ids: &[String],
    store: &dyn VulnStore,
    now: i64,
) -> StoreResult<VulnReport> {
    let mut warnings = BTreeSet::new();
    // Queries, and per ecosystem the names to look up.
    let mut queries: Vec<Option<Query>> = Vec::with_capacity(packages.len());
    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in packages {
        match query_for(p, distro) {
            Ok(q) => {
                if let Some(q) = &q {
                    names
                        .entry(q.ecosystem.clone())
                        .or_default()
                        .insert(q.name.clone());
                }
                queries.push(q);
            }
            Err(w) => {
                warnings.insert(w);
                queries.push(None);
            }
        }
    }
    // Candidates by (ecosystem, package name); an ecosystem is looked up
    // under every name feeds give it.
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut by_package: HashMap<(String, String), Vec<usize>> = HashMap::new();
    let mut feed_names: HashMap<&str, Vec<String>> = HashMap::new();
    for (ecosystem, set) in &names {
        let list: Vec<String> = set.iter().cloned().collect();
        let aliases = feed_ecosystems(ecosystem);
        // An advisory found under two names of one release is one
        // candidate; with a single name (most releases) nothing merges.
        let merge = aliases.len() > 1;
        let mut seen: HashMap<(FeedSource, String), usize> = HashMap::new();
        for alias in &aliases {
            for c in store.lookup(alias, &list).await? {
                if c.advisory.withdrawn.is_some() {
                    continue;
                }
                let key = merge.then(|| (c.advisory.source, c.advisory.id.clone()));
                let existing = key.as_ref().and_then(|k| seen.get(k).copied());
                let index = match existing {
                    Some(i) => {
                        if let Some(first) = candidates.get_mut(i) {
                            first.ranges.extend(c.ranges);
                        }
                        i
                    }
                    None => {
                        let i = candidates.len();
                        if let Some(k) = key {
                            seen.insert(k, i);
                        }
                        candidates.push(c);
                        i
                    }
                };
                let Some(stored) = candidates.get(index) else {
                    continue;
                };
                let pkgs: BTreeSet<&str> =
                    stored.ranges.iter().map(|r| r.package.as_str()).collect();
                for name in pkgs {
                    let hits = by_package
                        .entry((ecosystem.clone(), name.to_owned()))
                        .or_default();
                    if existing.is_none() || !hits.contains(&index) {
                        hits.push(index);
                    }
                }
            }
        }
        feed_names.insert(ecosystem.as_str(), aliases);
    }

    let mut findings: Vec<Finding> = Vec::new();
    for (index, (p, q)) in packages.iter().zip(&queries).enumerate() {
        let Some(q) = q else { continue };
        let Some(hits) = by_package.get(&(q.ecosystem.clone(), q.name.clone())) else {
            continue;
        };
        let names_of_release = feed_names.get(q.ecosystem.as_str());
        let mut per_package: Vec<Finding> = Vec::new();
        // Vulnerabilities a distro feed says this version is not affected by.
        let mut cleared: BTreeSet<&str> = BTreeSet::new();
        for &ci in hits {
            let Some(c) = candidates.get(ci) else {
                continue;
            };
            let ranges: Vec<&AffectedRange> = c
                .ranges
                .iter()
                .filter(|r| {
                    r.package == q.name
                        && names_of_release.is_some_and(|a| a.contains(&r.ecosystem))
                })
                .collect();
            let Some(first) = ranges.first() else {
                continue;
            };
            let eco = Ecosystem::from_osv(&first.ecosystem).unwrap_or(p.package.ecosystem);
            let mut results: Vec<(MatchResult, &AffectedRange)> = Vec::new();
            for r in &ranges {
                match affects(r, &q.version, eco) {
                    Ok(m) => results.push((m, r)),
                    Err(e) => {
                        warnings.insert(format!(
                            "{} {} {}: {} {}: {e}",
                            p.package.kind,
                            p.package.name,
                            q.version,
                            c.advisory.source,
                            r.advisory_id
                        ));
                    }
                }
            }
            if results.is_empty() {
                continue;
            }
            let affected: Vec<&(MatchResult, &AffectedRange)> =
                results.iter().filter(|(m, _)| m.is_affected()).collect();
            let fixed_version = if holds_parts(c.advisory.source) {
                if affected.len() != results.len() {
                    cleared.insert(c.advisory.id.as_str());
                    cleared.extend(c.advisory.aliases.iter().map(String::as_str));
                    continue;
                }
                affected
                    .iter()
                    .filter_map(|(m, _)| m.fixed_version())
                    .min_by(|a, b| compare(eco, a, b))
                    .map(str::to_owned)
            } else {
                if affected.is_empty() {
                    continue;
                }
                if affected.iter().any(|(m, _)| m.fixed_version().is_none()) {
                    None
                } else {
                    affected
                        .iter()
                        .filter_map(|(m, _)| m.fixed_version())
                        .max_by(|a, b| compare(eco, a, b))
                        .map(str::to_owned)
                }
            };
            let severity = affected
                .iter()
                .find_map(|(_, r)| r.severity)
                .or(c.advisory.severity);
            let a = &c.advisory;
            let mut aliases: Vec<String> =
                a.aliases.iter().filter(|x| **x != a.id).cloned().collect();
            aliases.sort();
            aliases.dedup();
            per_package.push(Finding {
                id: a.id.clone(),
                aliases,
                package: p.package.name.clone(),
                kind: p.package.kind.name(),
                advisory_package: q.name.clone(),
                installed_version: q.version.clone(),
                fixed_version,
                severity: severity.map(|s| s.as_str()),
                layer: p.layer,
                layer_diff_id: diff_ids
                    .get(p.layer)
                    .cloned()
                    .unwrap_or_else(|| p.layer_digest.to_string()),
                source: a.source.as_str(),
                ecosystem: q.ecosystem.clone(),
                published: a.published.map(|t| t.to_rfc3339()),
                modified: a.modified.map(|t| t.to_rfc3339()),
                summary: a.summary.clone(),
                also_reported_by: Vec::new(),
                path: p.package.path.clone(),
                severity_rank: severity,
                date: a.published.or(a.modified),
                package_index: index,
                feed: a.source,
            });
        }
        per_package.retain(|f| {
            holds_parts(f.feed)
                || (!cleared.contains(f.id.as_str())
                    && !f.aliases.iter().any(|a| cleared.contains(a.as_str())))
        });
        findings.extend(dedupe(per_package));
    }
    findings.sort_by(|a, b| {
        b.severity_rank
            .cmp(&a.severity_rank)
            .then_with(|| a.package.cmp(&b.package))
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.package_index.cmp(&b.package_index))
    });
    let summary = summarize(&findings, packages, now);
    Ok(VulnReport {
        findings,
        summary,
        warnings: warnings.into_iter().collect(),
    })
}

/// Merges the findings of one package that name the same vulnerability.
fn dedupe(mut list: Vec<Finding>) -> Vec<Finding> {
    list.sort_by(|a, b| {
        feed_rank(a.feed)
            .cmp(&feed_rank(b.feed))
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.source.cmp(b.source))
    });
    let mut kept: Vec<(BTreeSet<String>, Finding)> = Vec::new();
    for f in list {
        let keys: BTreeSet<String> = std::iter::once(f.id.clone())
            .chain(f.aliases.iter().cloned())
            .collect();
        let Some((set, into)) = kept.iter_mut().find(|(set, _)| !set.is_disjoint(&keys)) else {
            kept.push((keys, f));
            continue;
        };
        into.also_reported_by.push(format!("{}:{}", f.source, f.id));
        for k in &keys {
            if *k != into.id && !into.aliases.contains(k) {
                into.aliases.push(k.clone());
            }
        }
        into.aliases.sort();
        if into.severity_rank.is_none() {
            into.severity_rank = f.severity_rank;
            into.severity = f.severity;
        }
        if into.date.is_none() {
            into.date = f.date;
        }
        if into.published.is_none() {
            into.published = f.published;
        }
        if into.modified.is_none() {
            into.modified = f.modified;
        }
        if into.summary.is_none() {
            into.summary = f.summary;
        }
        set.extend(keys);
    }
    kept.into_iter().map(|(_, f)| f).collect()
}

fn summarize(findings: &[Finding], packages: &[ImagePackage], now: i64) -> Summary {
    let mut counts = SeverityCounts::default();
    let mut fixable = 0;
    let mut grade = Grade::A;
    let mut cause: Option<GradeCause> = None;
    // (grade, older first) decides the cause.
    let mut cause_key: Option<(Grade, i64)> = None;
    let mut outdated: BTreeMap<usize, Outdated> = BTreeMap::new();
    for f in findings {
        match f.severity_rank {
            Some(Severity::Critical) => counts.critical += 1,
            Some(Severity::High) => counts.high += 1,
            Some(Severity::Medium) => counts.medium += 1,
            Some(Severity::Low) => counts.low += 1,
            Some(Severity::None) => counts.none += 1,
            None => counts.unknown += 1,
        }
        let Some(fixed) = &f.fixed_version else {
            continue;
        };
        fixable += 1;
        let age = f.date.map(|d| (now - d.0).max(0));
        let g = Grade::of(f.severity_rank, age);
        if g > Grade::A {
            let key = (g, age.unwrap_or(i64::MAX));
            if cause_key.is_none_or(|k| key > k) {
                cause_key = Some(key);
                cause = Some(GradeCause {
                    id: f.id.clone(),
                    package: f.package.clone(),
                    severity: f.severity.unwrap_or("unknown"),
                    age_days: age.map(|a| a / DAY),
                });
            }
            grade = grade.max(g);
        }
        let Some(p) = packages.get(f.package_index) else {
            continue;
        };
        let eco = Ecosystem::from_osv(&f.ecosystem).unwrap_or(p.package.ecosystem);
        let entry = outdated.entry(f.package_index).or_insert_with(|| Outdated {
            package: f.package.clone(),
            kind: f.kind,
            installed_version: f.installed_version.clone(),
            fixed_version: fixed.clone(),
            fixes: 0,
            layer: f.layer,
            path: f.path.clone(),
        });
        entry.fixes += 1;
        if compare(eco, fixed, &entry.fixed_version) == Ordering::Greater {
            entry.fixed_version = fixed.clone();
        }
    }
    let total = findings.len() as u64;
    let mut outdated: Vec<Outdated> = outdated.into_values().collect();
    outdated.sort_by(|a, b| (&a.package, &a.path).cmp(&(&b.package, &b.path)));
    Summary {
        total,
        counts,
        fixable,
        unfixed: total - fixable,
        grade,
        grade_cause: cause,
        outdated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distro::DistroId;
    use crate::inventory::Package;
    use crate::vulndb::import_bytes;
    use crate::vulndb::store::{ImportMode, MemoryStore};
    use bulwark_oci::Digest;

    fn distro(id: DistroId, version: &str, codename: Option<&str>) -> Distro {
        let d = match id {
            DistroId::Debian => crate::distro::from_os_release(
                format!(
                    "ID=debian\nVERSION_ID=\"{version}\"\nVERSION_CODENAME={}\n",
                    codename.unwrap_or("")
                )
                .as_bytes(),
            ),
            _ => crate::distro::from_os_release(
                format!("ID=alpine\nVERSION_ID={version}\n").as_bytes(),
            ),
        };
        d.unwrap()
    }

    fn pkg(
        kind: PackageKind,
        name: &str,
        version: &str,
        source: Option<(&str, &str)>,
        layer: usize,
    ) -> ImagePackage {
        ImagePackage {
            package: Package {
                name: name.to_owned(),
                version: version.to_owned(),
                source_name: source.map(|s| s.0.to_owned()),
                source_version: source.map(|s| s.1.to_owned()),
                ecosystem: kind.ecosystem(),
                kind,
                path: "var/lib/dpkg/status".to_owned(),
                purl: String::new(),
                licenses: Vec::new(),
            },
            layer,
            layer_digest: Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
            file_layer: layer,
        }
    }

    const TRACKER: &str = r#"{"shadow": {"CVE-2023-4641": {"description": "d", "releases": {
        "bookworm": {"status": "open", "repositories": {"bookworm": "1:4.13+dfsg1-1"}, "urgency": "low"}}},
        "CVE-2023-29383": {"description": "d2", "releases": {
        "bookworm": {"status": "resolved", "repositories": {"bookworm": "1:4.13+dfsg1-1"}, "fixed_version": "0", "urgency": "low"}}}},
        "openssl": {"CVE-2024-0001": {"description": "x", "releases": {
        "bookworm": {"status": "resolved", "fixed_version": "3.0.13-1~deb12u1", "urgency": "high"}}}}}"#;

    const OSV: &str = r#"[{"id": "CVE-2023-4641", "published": "2023-12-27T16:15:13Z",
        "modified": "2024-01-01T00:00:00Z",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "shadow"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]},
        {"id": "CVE-2024-0001", "published": "2024-01-01T00:00:00Z",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]}]}]},
        {"id": "PYSEC-1", "aliases": ["CVE-2099-1"], "published": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "urllib3"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0.7"}]}]}]}]"#;

    fn store() -> MemoryStore {
        let s = MemoryStore::new();
        for (name, doc) in [("t.json", TRACKER), ("o.json", OSV)] {
            let b = import_bytes(name, doc.as_bytes());
            assert!(b.skipped.is_empty(), "{:?}", b.skipped);
            futures::executor::block_on(s.import(&b, ImportMode::Merge, 0)).unwrap();
        }
        s
    }

    #[test]
    fn matches_dedupes_and_grades() {
        let s = store();
        let d = distro(DistroId::Debian, "12", Some("bookworm"));
        let packages = vec![
            pkg(
                PackageKind::Dpkg,
                "passwd",
                "1:4.13+dfsg1-1",
                Some(("shadow", "1:4.13+dfsg1-1")),
                0,
            ),
            pkg(
                PackageKind::Dpkg,
                "libssl3",
                "3.0.11-1~deb12u2",
                Some(("openssl", "3.0.11-1~deb12u2")),
                1,
            ),
            pkg(PackageKind::Python, "urllib3", "2.0.6", None, 1),
        ];
        let now = Timestamp::parse("2024-01-20T00:00:00Z").unwrap().0;
        let r = futures::executor::block_on(match_packages(
            &packages,
            Some(&d),
            &["sha256:l0".to_owned(), "sha256:l1".to_owned()],
            &s,
            now,
        ))
        .unwrap();
        let ids: Vec<(&str, &str, &str)> = r
            .findings
            .iter()
            .map(|f| (f.package.as_str(), f.id.as_str(), f.source))
            .collect();
        assert_eq!(
            ids,
            [
                ("libssl3", "CVE-2024-0001", "debian-tracker"),
                ("passwd", "CVE-2023-4641", "debian-tracker"),
                ("urllib3", "PYSEC-1", "osv"),
            ],
            "{:#?}",
            r.findings
        );
        let ssl = &r.findings[0];
        assert_eq!(ssl.fixed_version.as_deref(), Some("3.0.13-1~deb12u1"));
        assert_eq!(ssl.severity, Some("high"));
        assert_eq!(ssl.layer_diff_id, "sha256:l1");
        assert_eq!(ssl.also_reported_by, ["osv:CVE-2024-0001"]);
        assert_eq!(ssl.published.as_deref(), Some("2024-01-01T00:00:00Z"));
        let shadow = &r.findings[1];
        assert_eq!(shadow.fixed_version, None);
        assert_eq!(shadow.severity, Some("low"));
        assert_eq!(r.summary.counts.high, 1);
        assert_eq!((r.summary.fixable, r.summary.unfixed), (2, 1));
        // High, fixable, 19 days old: B.
        assert_eq!(r.summary.grade, Grade::B);
        assert_eq!(r.summary.grade_cause.as_ref().unwrap().age_days, Some(19));
        let outdated: Vec<_> = r
            .summary
            .outdated
            .iter()
            .map(|o| (o.package.as_str(), o.fixed_version.as_str()))
            .collect();
        assert_eq!(
            outdated,
            [("libssl3", "3.0.13-1~deb12u1"), ("urllib3", "2.0.7")]
        );
        // Fixed package: no finding; grade A.
        let fixed = vec![pkg(
            PackageKind::Dpkg,
            "libssl3",
            "3.0.13-1~deb12u1",
            Some(("openssl", "3.0.13-1~deb12u1")),
            0,
        )];
        let r =
            futures::executor::block_on(match_packages(&fixed, Some(&d), &[], &s, now)).unwrap();
        assert!(r.findings.is_empty());
        assert_eq!(r.summary.grade, Grade::A);
        // Another release sees nothing.
        let d11 = distro(DistroId::Debian, "11", Some("bullseye"));
        let r =
            futures::executor::block_on(match_packages(&packages[..2], Some(&d11), &[], &s, now))
                .unwrap();
        assert!(r.findings.is_empty());
    }

    fn run(
        packages: &[ImagePackage],
        distro: Option<&Distro>,
        docs: &[(&str, &str)],
    ) -> VulnReport {
        let s = MemoryStore::new();
        for (name, doc) in docs {
            let b = import_bytes(name, doc.as_bytes());
            assert!(b.skipped.is_empty(), "{:?}", b.skipped);
            futures::executor::block_on(s.import(&b, ImportMode::Merge, 0)).unwrap();
        }
        futures::executor::block_on(match_packages(packages, distro, &[], &s, 0)).unwrap()
    }

    fn fixes(r: &VulnReport) -> Vec<(&str, &str, Option<&str>)> {
        r.findings
            .iter()
            .map(|f| {
                (
                    f.package.as_str(),
                    f.id.as_str(),
                    f.fixed_version.as_deref(),
                )
            })
            .collect()
    }

    #[test]
    fn distro_fix_entries_must_all_agree() {
        // Alpine lists one CVE under two fixed versions of a branch.
        let secdb = r#"{"distroversion": "v3.18", "reponame": "main", "packages": [
            {"pkg": {"name": "expat", "secfixes": {"2.6.0-r0": ["CVE-2023-52425"],
             "2.6.3-r0": ["CVE-2023-52425", "CVE-2024-45492"]}}}]}"#;
        let d = distro(DistroId::Alpine, "3.18.4", None);
        let at = |v: &str| {
            let p = [pkg(PackageKind::Apk, "libexpat", v, Some(("expat", v)), 0)];
            let r = run(&p, Some(&d), &[("s.json", secdb)]);
            fixes(&r)
                .into_iter()
                .map(|(_, id, fix)| (id.to_owned(), fix.map(str::to_owned)))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            at("2.5.0-r1"),
            [
                ("CVE-2023-52425".to_owned(), Some("2.6.0-r0".to_owned())),
                ("CVE-2024-45492".to_owned(), Some("2.6.3-r0".to_owned()))
            ]
        );
        assert_eq!(
            at("2.6.2-r0"),
            [("CVE-2024-45492".to_owned(), Some("2.6.3-r0".to_owned()))]
        );
        assert!(at("2.6.3-r0").is_empty());
    }

    #[test]
    fn osv_ranges_are_alternatives() {
        let osv = r#"{"id": "GHSA-1", "modified": "2024-01-01T00:00:00Z", "affected": [
            {"package": {"ecosystem": "npm", "name": "lib"},
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]}]},
            {"package": {"ecosystem": "npm", "name": "lib"},
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "2.0.0"}, {"fixed": "2.5.0"}]}]}]}"#;
        let at = |v: &str| {
            let p = [pkg(PackageKind::Npm, "lib", v, None, 0)];
            let r = run(&p, None, &[("a.json", osv)]);
            r.findings.first().map(|f| f.fixed_version.clone())
        };
        assert_eq!(at("0.9.0"), Some(Some("1.0.0".to_owned())));
        assert_eq!(at("1.5.0"), None);
        assert_eq!(at("2.1.0"), Some(Some("2.5.0".to_owned())));
        assert_eq!(at("2.5.0"), None);
        // An unparsable installed version is a warning, not an error.
        let p = [pkg(PackageKind::Npm, "lib", "not a version", None, 0)];
        let r = run(&p, None, &[("a.json", osv)]);
        assert!(r.findings.is_empty());
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    }

    #[test]
    fn release_by_codename_and_unknown_release() {
        let tracker = r#"{"openssl": {"CVE-2024-0002": {"description": "x", "releases": {
            "trixie": {"status": "open", "urgency": "medium"}}}}}"#;
        let p = [pkg(
            PackageKind::Dpkg,
            "libssl3t64",
            "3.3.1-1",
            Some(("openssl", "3.3.1-1")),
            0,
        )];
        let testing = crate::distro::from_os_release(b"ID=debian\nVERSION_CODENAME=trixie\n");
        let r = run(&p, testing.as_ref(), &[("t.json", tracker)]);
        assert_eq!(fixes(&r), [("libssl3t64", "CVE-2024-0002", None)]);
        assert_eq!(r.findings[0].ecosystem, "Debian:13");
        let r = run(&p, None, &[("t.json", tracker)]);
        assert!(r.findings.is_empty());
        assert!(
            r.warnings[0].contains("release unknown"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn grade_thresholds() {
        let c = Some(Severity::Critical);
        let h = Some(Severity::High);
        assert_eq!(Grade::of(c, Some(7 * DAY)), Grade::B);
        assert_eq!(Grade::of(c, Some(7 * DAY + 1)), Grade::C);
        assert_eq!(Grade::of(c, Some(90 * DAY)), Grade::D);
        assert_eq!(Grade::of(c, Some(365 * DAY)), Grade::E);
        assert_eq!(Grade::of(c, Some(366 * DAY)), Grade::F);
        assert_eq!(Grade::of(h, Some(30 * DAY)), Grade::B);
        assert_eq!(Grade::of(h, Some(31 * DAY)), Grade::C);
        assert_eq!(Grade::of(h, Some(365 * DAY)), Grade::D);
        assert_eq!(Grade::of(h, Some(731 * DAY)), Grade::F);
        assert_eq!(Grade::of(h, None), Grade::F);
        assert_eq!(Grade::of(Some(Severity::Medium), None), Grade::A);
        assert_eq!(Grade::of(None, None), Grade::A);
    }
}
