-- Vulnerability database: advisories of the imported feeds, the version ranges they affect
-- and a log of import runs (see bulwark_scanner::vulndb::store for the import semantics).
--
-- An advisory is keyed by (source, id): `source` is the feed format ('osv', 'alpine-secdb',
-- 'debian-tracker', 'redhat-csaf'), so the Debian tracker's and OSV's CVE-2023-4641 are two
-- rows. Lists and structured values (aliases, CVSS vectors, references, range events,
-- explicit versions) are JSON text; times are Unix seconds; severities their lowercase names.
-- Ranges are looked up by (ecosystem, package) when an image is matched: `Debian:12` +
-- source package, `PyPI` + normalised name, ...
CREATE TABLE vuln_advisories (
    pk INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    aliases TEXT NOT NULL,
    summary TEXT,
    details TEXT,
    published INTEGER,
    modified INTEGER,
    withdrawn INTEGER,
    severity TEXT,
    cvss TEXT NOT NULL,
    refs TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (source, id)
);

CREATE TABLE vuln_ranges (
    pk INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    advisory_id TEXT NOT NULL,
    ecosystem TEXT NOT NULL,
    package TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('ecosystem', 'semver')),
    events TEXT NOT NULL,
    versions TEXT NOT NULL,
    fixed_version TEXT,
    unfixed INTEGER NOT NULL CHECK (unfixed IN (0, 1)),
    not_affected INTEGER NOT NULL CHECK (not_affected IN (0, 1)),
    severity TEXT,
    FOREIGN KEY (source, advisory_id) REFERENCES vuln_advisories(source, id) ON DELETE CASCADE
);
CREATE INDEX vuln_ranges_package ON vuln_ranges(ecosystem, package);
CREATE INDEX vuln_ranges_advisory ON vuln_ranges(source, advisory_id);

CREATE TABLE vuln_import_log (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    files INTEGER NOT NULL,
    records INTEGER NOT NULL,
    advisories INTEGER NOT NULL,
    ranges INTEGER NOT NULL,
    inserted INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL
);
