//! SBOMs of a scanned image: SPDX 2.3 JSON and CycloneDX 1.5 JSON.
//!
//! Both documents describe the image as the root package (SPDX: the package
//! the document `DESCRIBES`, with `primaryPackagePurpose` `CONTAINER` and
//! the image digest as checksum; CycloneDX: `metadata.component` of type
//! `container` with the digest as hash), the detected distribution as an
//! operating-system package, and one package per inventory entry with its
//! name, version, purl (SPDX `externalRefs` `PACKAGE-MANAGER`/`purl`;
//! CycloneDX `purl`), source package when the package database names one
//! (SPDX `sourceInfo` and annotations; CycloneDX properties) and the layer
//! that introduced it (SPDX annotations `bulwark:LayerIndex: 0`,
//! `bulwark:LayerDigest: sha256:…`; CycloneDX properties
//! `bulwark:layer_index`, `bulwark:layer_digest`).
//!
//! Output is deterministic: packages are sorted (purl, path, layer, name,
//! version); ids are derived from content (`SPDXRef-Package-<kind>-<16 hex
//! of sha256(kind, name, version, purl, path, layer)>`, the same stem as
//! the CycloneDX `bom-ref`), with a `-2`, `-3`, … suffix for exact
//! duplicates; the creation time is passed in. The SPDX namespace is
//! `https://spdx.org/spdxdocs/bulwark/<algorithm>/<image digest hex>`; the
//! CycloneDX serial number is a UUID (version 4 layout) made from a sha256
//! of the image digest, the package ids and the timestamp, so a document
//! regenerated at another time gets a new serial number as the spec asks.

use std::collections::BTreeMap;

use bulwark_oci::{Algorithm, Digest, Hasher};
use serde_json::{Value, json};

use crate::distro::Distro;
use crate::image::{ImagePackage, ScannedImage};
use crate::vulndb::Timestamp;

/// The tool named in the documents.
pub const TOOL_NAME: &str = "bulwark";
/// Its version.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The SBOM formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SbomFormat {
    Spdx,
    CycloneDx,
}

impl SbomFormat {
    /// `spdx` / `spdx-json`, `cyclonedx` / `cyclonedx-json` / `cdx`.
    pub fn parse(s: &str) -> Option<SbomFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "spdx" | "spdx-json" | "spdx2.3" => Some(SbomFormat::Spdx),
            "cyclonedx" | "cyclonedx-json" | "cdx" => Some(SbomFormat::CycloneDx),
            _ => None,
        }
    }
}

/// What an SBOM is made from: the image and its inventory. Build it with
/// [`SbomImage::from_scan`], or from a stored inventory.
#[derive(Debug, Clone)]
pub struct SbomImage<'a> {
    /// The image's name (a reference, or the digest when none is known).
    pub name: String,
    /// The image's digest: the manifest digest, else the config digest.
    pub digest: &'a Digest,
    pub distro: Option<&'a Distro>,
    pub packages: &'a [ImagePackage],
}

impl<'a> SbomImage<'a> {
    /// The image of a scan, named `name` (default: its digest).
    pub fn from_scan(scan: &'a ScannedImage, name: Option<&str>) -> SbomImage<'a> {
        let digest = scan.manifest_digest.as_ref().unwrap_or(&scan.config_digest);
        SbomImage {
            name: name
                .filter(|n| !n.trim().is_empty())
                .map_or_else(|| digest.to_string(), str::to_owned),
            digest,
            distro: scan.distro.as_ref(),
            packages: &scan.packages,
        }
    }
}

/// The SBOM in `format`, created at `created`.
pub fn generate(format: SbomFormat, image: &SbomImage<'_>, created: Timestamp) -> Value {
    match format {
        SbomFormat::Spdx => spdx(image, created),
        SbomFormat::CycloneDx => cyclonedx(image, created),
    }
}

/// A package with its stable id, in document order.
struct Entry<'a> {
    id: String,
    p: &'a ImagePackage,
}

fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Hasher::new(Algorithm::Sha256);
    for part in parts {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    h.finish().hex().to_owned()
}

/// Sorted packages with unique ids (`Package-<kind>-<hex16>`).
fn entries<'a>(packages: &'a [ImagePackage]) -> Vec<Entry<'a>> {
    let mut sorted: Vec<&ImagePackage> = packages.iter().collect();
    sorted.sort_by(|a, b| {
        let key = |p: &'a ImagePackage| {
            (
                &p.package.purl,
                &p.package.path,
                p.layer,
                &p.package.name,
                &p.package.version,
                p.package.kind.name(),
            )
        };
        key(a).cmp(&key(b))
    });
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    sorted
        .into_iter()
        .map(|p| {
            let layer = p.layer.to_string();
            let hash = sha256_hex(&[
                p.package.kind.name(),
                &p.package.name,
                &p.package.version,
                &p.package.purl,
                &p.package.path,
                &layer,
            ]);
            let stem = format!(
                "Package-{}-{}",
                p.package.kind.name(),
                hash.get(..16).unwrap_or(&hash)
            );
            let n = used.entry(stem.clone()).or_insert(0);
            *n += 1;
            let id = if *n == 1 { stem } else { format!("{stem}-{n}") };
            Entry { id, p }
        })
        .collect()
}

fn distro_version(d: &Distro) -> String {
    d.version_id
        .clone()
        .or_else(|| d.is_edge.then(|| "edge".to_owned()))
        .unwrap_or_default()
}

fn distro_id(d: &Distro) -> String {
    format!(
        "OperatingSystem-{}",
        sha256_hex(&[d.id.as_str(), &distro_version(d)])
            .get(..16)
            .unwrap_or("")
    )
}

fn image_id(image: &SbomImage<'_>) -> String {
    format!(
        "Image-{}",
        image.digest.hex().get(..16).unwrap_or(image.digest.hex())
    )
}

fn tool() -> String {
    format!("{TOOL_NAME}-{TOOL_VERSION}")
}

/// The SPDX 2.3 JSON document.
pub fn spdx(image: &SbomImage<'_>, created: Timestamp) -> Value {
    let created = created.to_rfc3339();
    let annotator = format!("Tool: {}", tool());
    let annotation = |comment: String| {
        json!({
            "annotationDate": created,
            "annotationType": "OTHER",
            "annotator": annotator,
            "comment": comment,
        })
    };
    let image_ref = format!("SPDXRef-{}", image_id(image));
    let checksum_alg = match image.digest.algorithm() {
        Algorithm::Sha256 => "SHA256",
        Algorithm::Sha512 => "SHA512",
    };
    let mut packages = vec![json!({
        "name": image.name,
        "SPDXID": image_ref,
        "versionInfo": image.digest.to_string(),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{ "algorithm": checksum_alg, "checksumValue": image.digest.hex() }],
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_ref,
    })];
    let mut contains = Vec::new();
    if let Some(d) = image.distro {
        let id = format!("SPDXRef-{}", distro_id(d));
        let mut os = json!({
            "name": d.id.as_str(),
            "SPDXID": id,
            "versionInfo": distro_version(d),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "OPERATING-SYSTEM",
        });
        if let (Some(pretty), Some(obj)) = (&d.pretty_name, os.as_object_mut()) {
            obj.insert("description".to_owned(), json!(pretty));
        }
        packages.push(os);
        contains.push(id);
    }
    for e in entries(image.packages) {
        let p = &e.p.package;
        let id = format!("SPDXRef-{}", e.id);
        let mut notes = vec![
            annotation(format!("bulwark:PkgType: {}", p.kind.name())),
            annotation(format!("bulwark:LayerIndex: {}", e.p.layer)),
            annotation(format!("bulwark:LayerDigest: {}", e.p.layer_digest)),
            annotation(format!("bulwark:Path: {}", p.path)),
        ];
        if let Some(src) = &p.source_name {
            notes.push(annotation(format!("bulwark:SrcName: {src}")));
        }
        if let Some(v) = &p.source_version {
            notes.push(annotation(format!("bulwark:SrcVersion: {v}")));
        }
        let mut pkg = json!({
            "name": p.name,
            "SPDXID": id,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "annotations": notes,
        });
        if let Some(obj) = pkg.as_object_mut() {
            if !p.purl.is_empty() {
                obj.insert(
                    "externalRefs".to_owned(),
                    json!([{
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": p.purl,
                    }]),
                );
            }
            if let Some(src) = &p.source_name {
                let version = p
                    .source_version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default();
                obj.insert(
                    "sourceInfo".to_owned(),
                    json!(format!("built from source package: {src}{version}")),
                );
            }
        }
        packages.push(pkg);
        contains.push(id);
    }
    contains.sort();
    relationships.extend(contains.into_iter().map(|id| {
        json!({
            "spdxElementId": image_ref,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        })
    }));
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image.name,
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/bulwark/{}/{}",
            image.digest.algorithm().as_str(),
            image.digest.hex()
        ),
        "creationInfo": {
            "created": created,
            "creators": [format!("Tool: {}", tool())],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// The CycloneDX 1.5 JSON document.
pub fn cyclonedx(image: &SbomImage<'_>, created: Timestamp) -> Value {
    let timestamp = created.to_rfc3339();
    let image_ref = image_id(image);
    let hash_alg = match image.digest.algorithm() {
        Algorithm::Sha256 => "SHA-256",
        Algorithm::Sha512 => "SHA-512",
    };
    let prop = |name: &str, value: String| json!({ "name": name, "value": value });
    let mut components = Vec::new();
    let mut refs = Vec::new();
    if let Some(d) = image.distro {
        let id = distro_id(d);
        let mut os = json!({
            "type": "operating-system",
            "bom-ref": id,
            "name": d.id.as_str(),
            "version": distro_version(d),
        });
        if let (Some(pretty), Some(obj)) = (&d.pretty_name, os.as_object_mut()) {
            obj.insert("description".to_owned(), json!(pretty));
        }
        components.push(os);
        refs.push(id);
    }
    let entries = entries(image.packages);
    for e in &entries {
        let p = &e.p.package;
        let mut properties = vec![
            prop("bulwark:package_kind", p.kind.name().to_owned()),
            prop("bulwark:layer_index", e.p.layer.to_string()),
            prop("bulwark:layer_digest", e.p.layer_digest.to_string()),
            prop("bulwark:path", p.path.clone()),
        ];
        if let Some(src) = &p.source_name {
            properties.push(prop("bulwark:source_name", src.clone()));
        }
        if let Some(v) = &p.source_version {
            properties.push(prop("bulwark:source_version", v.clone()));
        }
        properties.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        let mut c = json!({
            "type": "library",
            "bom-ref": e.id,
            "name": p.name,
            "version": p.version,
            "properties": properties,
        });
        if let Some(obj) = c.as_object_mut() {
            if !p.purl.is_empty() {
                obj.insert("purl".to_owned(), json!(p.purl));
            }
            if !p.licenses.is_empty() {
                let licenses: Vec<Value> = p
                    .licenses
                    .iter()
                    .map(|l| json!({ "license": { "name": l } }))
                    .collect();
                obj.insert("licenses".to_owned(), Value::Array(licenses));
            }
        }
        components.push(c);
        refs.push(e.id.clone());
    }
    refs.sort();

    let mut seed: Vec<&str> = vec![image.digest.hex(), &timestamp];
    seed.extend(entries.iter().map(|e| e.id.as_str()));
    let serial = uuid_from(&sha256_hex(&seed));

    let mut dependencies = vec![json!({ "ref": image_ref, "dependsOn": refs })];
    dependencies.extend(
        components
            .iter()
            .filter_map(|c| c["bom-ref"].as_str())
            .map(|r| json!({ "ref": r, "dependsOn": [] })),
    );
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{serial}"),
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {
                "components": [{ "type": "application", "name": TOOL_NAME, "version": TOOL_VERSION }],
            },
            "component": {
                "type": "container",
                "bom-ref": image_ref,
                "name": image.name,
                "version": image.digest.to_string(),
                "hashes": [{ "alg": hash_alg, "content": image.digest.hex() }],
            },
        },
        "components": components,
        "dependencies": dependencies,
    })
}

/// A UUID (version 4 layout, RFC 4122 variant) from 32 hex digits.
fn uuid_from(hex: &str) -> String {
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = hex
            .get(i * 2..i * 2 + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h.get(..8).unwrap_or(""),
        h.get(8..12).unwrap_or(""),
        h.get(12..16).unwrap_or(""),
        h.get(16..20).unwrap_or(""),
        h.get(20..32).unwrap_or("")
    )
}

/// Structural checks of the documents: the parts of the official JSON
/// schemas and specs that this module's output relies on. Used by tests
/// here and in the CLI crate.
pub mod check {
    use std::collections::BTreeSet;

    use serde_json::Value;

    /// Problems with an SPDX 2.3 JSON document; empty when none.
    pub fn spdx(doc: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        for (k, want) in [
            ("spdxVersion", Some("SPDX-2.3")),
            ("dataLicense", Some("CC0-1.0")),
            ("SPDXID", Some("SPDXRef-DOCUMENT")),
            ("name", None),
            ("documentNamespace", None),
        ] {
            match (s(doc, k), want) {
                (None, _) => errs.push(format!("missing string {k}")),
                (Some(got), Some(w)) if got != w => errs.push(format!("{k} is {got:?}, not {w:?}")),
                _ => {}
            }
        }
        if let Some(ns) = s(doc, "documentNamespace")
            && (ns.contains('#') || !ns.contains("://"))
        {
            errs.push(format!("documentNamespace {ns:?} is not a URI without '#'"));
        }
        let ci = &doc["creationInfo"];
        if !s(ci, "created").is_some_and(|c| is_spdx_date(&c)) {
            errs.push("creationInfo.created is not YYYY-MM-DDThh:mm:ssZ".into());
        }
        let creators = ci["creators"].as_array();
        if !creators.is_some_and(|c| {
            !c.is_empty()
                && c.iter().all(|x| {
                    x.as_str().is_some_and(|x| {
                        ["Tool: ", "Person: ", "Organization: "]
                            .iter()
                            .any(|p| x.starts_with(p))
                    })
                })
        }) {
            errs.push("creationInfo.creators must be non-empty Tool:/Person:/Organization:".into());
        }
        let mut ids = BTreeSet::from(["SPDXRef-DOCUMENT".to_owned()]);
        let empty = Vec::new();
        for (i, p) in doc["packages"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .enumerate()
        {
            for k in ["name", "SPDXID", "downloadLocation"] {
                if s(p, k).is_none() {
                    errs.push(format!("packages[{i}] missing {k}"));
                }
            }
            if let Some(id) = s(p, "SPDXID") {
                if !is_spdx_id(&id) {
                    errs.push(format!(
                        "packages[{i}].SPDXID {id:?} does not match SPDXRef-[a-zA-Z0-9.-]+"
                    ));
                }
                if !ids.insert(id.clone()) {
                    errs.push(format!("duplicate SPDXID {id}"));
                }
            }
            for r in p["externalRefs"].as_array().unwrap_or(&empty) {
                for k in ["referenceCategory", "referenceType", "referenceLocator"] {
                    if s(r, k).is_none() {
                        errs.push(format!("packages[{i}].externalRefs missing {k}"));
                    }
                }
                if s(r, "referenceType").as_deref() == Some("purl")
                    && !s(r, "referenceLocator").is_some_and(|l| l.starts_with("pkg:"))
                {
                    errs.push(format!("packages[{i}] purl locator is not a purl"));
                }
            }
            for a in p["annotations"].as_array().unwrap_or(&empty) {
                for k in ["annotationDate", "annotationType", "annotator", "comment"] {
                    if s(a, k).is_none() {
                        errs.push(format!("packages[{i}].annotations missing {k}"));
                    }
                }
                if !s(a, "annotationDate").is_some_and(|d| is_spdx_date(&d)) {
                    errs.push(format!("packages[{i}] annotationDate format"));
                }
                if !matches!(s(a, "annotationType").as_deref(), Some("REVIEW" | "OTHER")) {
                    errs.push(format!("packages[{i}] annotationType"));
                }
            }
        }
        let rels = doc["relationships"].as_array().unwrap_or(&empty);
        if !rels.iter().any(|r| {
            s(r, "spdxElementId").as_deref() == Some("SPDXRef-DOCUMENT")
                && s(r, "relationshipType").as_deref() == Some("DESCRIBES")
        }) {
            errs.push("no DOCUMENT DESCRIBES relationship".into());
        }
        for (i, r) in rels.iter().enumerate() {
            for k in ["spdxElementId", "relatedSpdxElement"] {
                match s(r, k) {
                    Some(id) if ids.contains(&id) => {}
                    other => {
                        errs.push(format!("relationships[{i}].{k} {other:?} names no element"))
                    }
                }
            }
            if s(r, "relationshipType").is_none() {
                errs.push(format!("relationships[{i}] missing relationshipType"));
            }
        }
        errs
    }

    /// Problems with a CycloneDX 1.5 JSON document; empty when none.
    pub fn cyclonedx(doc: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        if doc["bomFormat"] != "CycloneDX" {
            errs.push("bomFormat is not CycloneDX".into());
        }
        if doc["specVersion"] != "1.5" {
            errs.push("specVersion is not 1.5".into());
        }
        if !doc["serialNumber"].as_str().is_some_and(is_urn_uuid) {
            errs.push(format!(
                "serialNumber {} is not urn:uuid:",
                doc["serialNumber"]
            ));
        }
        if doc["version"].as_u64().is_none_or(|v| v < 1) {
            errs.push("version must be an integer >= 1".into());
        }
        let mut refs = BTreeSet::new();
        let meta = &doc["metadata"];
        if !meta["timestamp"].is_null()
            && !meta["timestamp"].as_str().is_some_and(super::is_date_time)
        {
            errs.push("metadata.timestamp is not a date-time".into());
        }
        let mut check_component = |c: &Value, at: &str, errs: &mut Vec<String>| {
            const TYPES: &[&str] = &[
                "application",
                "framework",
                "library",
                "container",
                "platform",
                "operating-system",
                "device",
                "device-driver",
                "firmware",
                "file",
                "machine-learning-model",
                "data",
            ];
            if !c["type"].as_str().is_some_and(|t| TYPES.contains(&t)) {
                errs.push(format!("{at}: type {} not allowed", c["type"]));
            }
            if c["name"].as_str().is_none() {
                errs.push(format!("{at}: missing name"));
            }
            match c["bom-ref"].as_str() {
                Some(r) => {
                    if !refs.insert(r.to_owned()) {
                        errs.push(format!("{at}: duplicate bom-ref {r}"));
                    }
                }
                None => errs.push(format!("{at}: missing bom-ref")),
            }
            if let Some(p) = c.get("purl")
                && !p.as_str().is_some_and(|p| p.starts_with("pkg:"))
            {
                errs.push(format!("{at}: purl is not a purl"));
            }
            for h in c["hashes"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                let ok = h["content"].as_str().is_some_and(|x| {
                    [32, 40, 64, 96, 128].contains(&x.len())
                        && x.bytes().all(|b| b.is_ascii_hexdigit())
                });
                if !ok || h["alg"].as_str().is_none() {
                    errs.push(format!("{at}: bad hash"));
                }
            }
            for p in c["properties"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                if p["name"].as_str().is_none() {
                    errs.push(format!("{at}: property without name"));
                }
            }
        };
        if meta.get("component").is_some() {
            check_component(&meta["component"], "metadata.component", &mut errs);
        }
        let empty = Vec::new();
        for (i, c) in doc["components"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .enumerate()
        {
            check_component(c, &format!("components[{i}]"), &mut errs);
        }
        for (i, d) in doc["dependencies"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .enumerate()
        {
            match d["ref"].as_str() {
                Some(r) if refs.contains(r) => {}
                other => errs.push(format!(
                    "dependencies[{i}].ref {other:?} names no component"
                )),
            }
            for r in d["dependsOn"].as_array().unwrap_or(&empty) {
                if !r.as_str().is_some_and(|r| refs.contains(r)) {
                    errs.push(format!(
                        "dependencies[{i}].dependsOn {r} names no component"
                    ));
                }
            }
        }
        errs
    }

    /// `SPDXRef-[a-zA-Z0-9.-]+`.
    pub fn is_spdx_id(id: &str) -> bool {
        id.strip_prefix("SPDXRef-").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        })
    }

    /// `urn:uuid:` and an RFC 4122 UUID as the CycloneDX 1.5 schema's
    /// pattern: `^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`.
    pub fn is_urn_uuid(s: &str) -> bool {
        let Some(u) = s.strip_prefix("urn:uuid:") else {
            return false;
        };
        let parts: Vec<&str> = u.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        parts.len() == 5
            && parts.iter().zip(lens).all(|(p, n)| {
                p.len() == n
                    && p.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
            && parts
                .get(2)
                .and_then(|p| p.bytes().next())
                .is_some_and(|b| (b'1'..=b'5').contains(&b))
            && parts
                .get(3)
                .and_then(|p| p.bytes().next())
                .is_some_and(|b| matches!(b, b'8' | b'9' | b'a' | b'b'))
    }

    /// `YYYY-MM-DDThh:mm:ssZ`, as SPDX requires.
    pub fn is_spdx_date(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 20
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'Z',
                _ => c.is_ascii_digit(),
            })
    }
}

/// An RFC 3339 date-time (`T`, seconds, `Z` or an offset).
fn is_date_time(s: &str) -> bool {
    s.len() >= 20 && s.as_bytes().get(10) == Some(&b'T') && Timestamp::parse(s).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distro::DistroId;
    use crate::inventory::{Package, PackageKind};
    use crate::version::Ecosystem;

    fn pkg(name: &str, version: &str, kind: PackageKind, purl: &str, layer: usize) -> ImagePackage {
        ImagePackage {
            package: Package {
                name: name.into(),
                version: version.into(),
                source_name: (kind == PackageKind::Dpkg).then(|| format!("{name}-src")),
                source_version: (kind == PackageKind::Dpkg).then(|| version.to_owned()),
                ecosystem: Ecosystem::Dpkg,
                kind,
                path: "var/lib/dpkg/status".into(),
                purl: purl.into(),
                licenses: vec!["MIT".into()],
            },
            layer,
            layer_digest: Digest::sha256_of(format!("layer{layer}").as_bytes()),
            file_layer: layer,
        }
    }

    fn fixture() -> (Digest, Distro, Vec<ImagePackage>) {
        let digest = Digest::sha256_of(b"manifest");
        let distro = Distro {
            id: DistroId::from_os_release_id("debian"),
            version_id: Some("12".into()),
            version_codename: Some("bookworm".into()),
            pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
            id_like: vec![],
            is_edge: false,
        };
        let packages = vec![
            pkg(
                "zlib1g",
                "1:1.2.13",
                PackageKind::Dpkg,
                "pkg:deb/debian/zlib1g@1%3A1.2.13",
                0,
            ),
            pkg(
                "libssl3",
                "3.0.11",
                PackageKind::Dpkg,
                "pkg:deb/debian/libssl3@3.0.11",
                0,
            ),
            pkg(
                "urllib3",
                "2.7.0",
                PackageKind::Python,
                "pkg:pypi/urllib3@2.7.0",
                1,
            ),
            // An exact duplicate (same file listing it twice).
            pkg(
                "urllib3",
                "2.7.0",
                PackageKind::Python,
                "pkg:pypi/urllib3@2.7.0",
                1,
            ),
        ];
        (digest, distro, packages)
    }

    const T: Timestamp = Timestamp(1_735_689_600);

    #[test]
    fn spdx_document() {
        let (digest, distro, packages) = fixture();
        let img = SbomImage {
            name: "example/app:1".into(),
            digest: &digest,
            distro: Some(&distro),
            packages: &packages,
        };
        let doc = spdx(&img, T);
        assert_eq!(check::spdx(&doc), Vec::<String>::new(), "{doc:#}");
        assert_eq!(doc["creationInfo"]["created"], "2025-01-01T00:00:00Z");
        assert_eq!(
            doc["documentNamespace"],
            format!("https://spdx.org/spdxdocs/bulwark/sha256/{}", digest.hex())
        );
        let pkgs = doc["packages"].as_array().unwrap();
        assert_eq!(pkgs.len(), 2 + packages.len());
        assert_eq!(pkgs[0]["primaryPackagePurpose"], "CONTAINER");
        assert_eq!(pkgs[0]["checksums"][0]["checksumValue"], digest.hex());
        assert_eq!(pkgs[1]["primaryPackagePurpose"], "OPERATING-SYSTEM");
        assert_eq!(pkgs[1]["versionInfo"], "12");
        // Sorted by purl: deb libssl3, deb zlib1g, pypi urllib3 x2.
        let names: Vec<&str> = pkgs[2..]
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["libssl3", "zlib1g", "urllib3", "urllib3"]);
        let ssl = &pkgs[2];
        assert_eq!(
            ssl["externalRefs"][0]["referenceLocator"],
            "pkg:deb/debian/libssl3@3.0.11"
        );
        assert_eq!(
            ssl["sourceInfo"],
            "built from source package: libssl3-src 3.0.11"
        );
        let comments: Vec<&str> = ssl["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["comment"].as_str().unwrap())
            .collect();
        assert!(comments.contains(&"bulwark:LayerIndex: 0"), "{comments:?}");
        assert!(comments.contains(&"bulwark:SrcName: libssl3-src"));
        let dup_a = pkgs[4]["SPDXID"].as_str().unwrap();
        let dup_b = pkgs[5]["SPDXID"].as_str().unwrap();
        assert_eq!(format!("{dup_a}-2"), dup_b);
        // image CONTAINS os + every package
        let contains = doc["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["relationshipType"] == "CONTAINS")
            .count();
        assert_eq!(contains, 1 + packages.len());
        // Deterministic, whatever the input order.
        let mut reversed = packages.clone();
        reversed.reverse();
        let again = spdx(
            &SbomImage {
                packages: &reversed,
                ..img.clone()
            },
            T,
        );
        assert_eq!(doc, again);
    }

    #[test]
    fn cyclonedx_document() {
        let (digest, distro, packages) = fixture();
        let img = SbomImage {
            name: "example/app:1".into(),
            digest: &digest,
            distro: Some(&distro),
            packages: &packages,
        };
        let doc = cyclonedx(&img, T);
        assert_eq!(check::cyclonedx(&doc), Vec::<String>::new(), "{doc:#}");
        assert_eq!(doc["metadata"]["timestamp"], "2025-01-01T00:00:00Z");
        assert_eq!(doc["metadata"]["component"]["type"], "container");
        assert_eq!(doc["metadata"]["component"]["version"], digest.to_string());
        let comps = doc["components"].as_array().unwrap();
        assert_eq!(comps.len(), 1 + packages.len());
        assert_eq!(comps[0]["type"], "operating-system");
        let ssl = &comps[1];
        assert_eq!(ssl["purl"], "pkg:deb/debian/libssl3@3.0.11");
        let props: BTreeMap<&str, &str> = ssl["properties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap(), p["value"].as_str().unwrap()))
            .collect();
        assert_eq!(props["bulwark:layer_index"], "0");
        assert_eq!(props["bulwark:source_name"], "libssl3-src");
        assert_eq!(
            props["bulwark:layer_digest"],
            Digest::sha256_of(b"layer0").to_string()
        );
        assert_eq!(ssl["licenses"][0]["license"]["name"], "MIT");
        // Same ids as SPDX.
        let s = spdx(&img, T);
        assert_eq!(
            format!("SPDXRef-{}", ssl["bom-ref"].as_str().unwrap()),
            s["packages"][2]["SPDXID"]
        );
        // Deterministic; a new timestamp gives a new serial number.
        assert_eq!(doc, cyclonedx(&img, T));
        let later = cyclonedx(&img, Timestamp(T.0 + 1));
        assert_ne!(doc["serialNumber"], later["serialNumber"]);
        assert_eq!(doc["components"], later["components"]);
    }

    #[test]
    fn empty_inventory_and_no_distro() {
        let digest = Digest::sha256_of(b"x");
        let img = SbomImage {
            name: String::new(),
            digest: &digest,
            distro: None,
            packages: &[],
        };
        assert!(check::spdx(&spdx(&img, T)).is_empty());
        assert!(check::cyclonedx(&cyclonedx(&img, T)).is_empty());
    }

    #[test]
    fn checks_catch_broken_documents() {
        let (digest, distro, packages) = fixture();
        let img = SbomImage {
            name: "n".into(),
            digest: &digest,
            distro: Some(&distro),
            packages: &packages,
        };
        let mut doc = spdx(&img, T);
        doc["packages"][2]["SPDXID"] = json!("SPDXRef-bad_id");
        doc["creationInfo"]["created"] = json!("2025-01-01");
        let errs = check::spdx(&doc);
        assert!(
            errs.iter().any(|e| e.contains("does not match")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.contains("names no element")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.contains("creationInfo.created")),
            "{errs:?}"
        );

        let mut doc = cyclonedx(&img, T);
        doc["serialNumber"] = json!("urn:uuid:not-a-uuid");
        doc["components"][2]["bom-ref"] = doc["components"][1]["bom-ref"].clone();
        let errs = check::cyclonedx(&doc);
        assert!(errs.iter().any(|e| e.contains("serialNumber")), "{errs:?}");
        assert!(
            errs.iter().any(|e| e.contains("duplicate bom-ref")),
            "{errs:?}"
        );

        assert!(check::is_urn_uuid(
            "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"
        ));
        assert!(!check::is_urn_uuid(
            "urn:uuid:3e671687-395b-61f5-a30f-a58921a69b79"
        ));
        assert!(check::is_spdx_id("SPDXRef-Package-dpkg-0a.b-1"));
        assert!(!check::is_spdx_id("SPDXRef-"));
    }

    #[test]
    fn formats() {
        assert_eq!(SbomFormat::parse("SPDX"), Some(SbomFormat::Spdx));
        assert_eq!(SbomFormat::parse("cyclonedx"), Some(SbomFormat::CycloneDx));
        assert_eq!(SbomFormat::parse("xml"), None);
    }
}
