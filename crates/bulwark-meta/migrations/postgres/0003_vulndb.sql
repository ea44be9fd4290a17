-- Vulnerability database, the same schema as the SQLite store's: advisories of the imported
-- feeds, the version ranges they affect and a log of import runs (see
-- bulwark_scanner::vulndb::store for the import semantics).
--
-- An advisory is keyed by (source, id): `source` is the feed format ('osv', 'alpine-secdb',
-- 'debian-tracker', 'redhat-csaf'). Keys use the "C" collation (exact, byte-ordered). Lists
-- and structured values are JSON text (TEXT, not JSONB: stored and read back verbatim); times
-- are Unix seconds; severities their lowercase names. Ranges are looked up by
-- (ecosystem, package) when an image is matched.
CREATE TABLE vuln_advisories (
    pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    aliases TEXT NOT NULL,
    summary TEXT,
    details TEXT,
    published BIGINT,
    modified BIGINT,
    withdrawn BIGINT,
    severity TEXT,
    cvss TEXT NOT NULL,
    refs TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (source, id)
);

CREATE TABLE vuln_ranges (
    pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source TEXT COLLATE "C" NOT NULL,
    advisory_id TEXT COLLATE "C" NOT NULL,
    ecosystem TEXT COLLATE "C" NOT NULL,
    package TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('ecosystem', 'semver')),
    events TEXT NOT NULL,
    versions TEXT NOT NULL,
    fixed_version TEXT,
    unfixed BOOLEAN NOT NULL,
    not_affected BOOLEAN NOT NULL,
    severity TEXT,
    FOREIGN KEY (source, advisory_id) REFERENCES vuln_advisories(source, id) ON DELETE CASCADE
);
CREATE INDEX vuln_ranges_package ON vuln_ranges(ecosystem, package);
CREATE INDEX vuln_ranges_advisory ON vuln_ranges(source, advisory_id);

CREATE TABLE vuln_import_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    files BIGINT NOT NULL,
    records BIGINT NOT NULL,
    advisories BIGINT NOT NULL,
    ranges BIGINT NOT NULL,
    inserted BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL
);
