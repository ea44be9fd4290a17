-- Scanning in the server (see bulwark_scanner::jobs): the scan job queue, the stored results
-- per manifest digest and the scanner's events. JSON values are TEXT; times Unix seconds.
--
-- A job is 'queued', 'running' (claimed_by/claimed_at: the worker and its lease start),
-- 'done' or 'failed'. At most one queued job per (repository, digest).
CREATE TABLE scan_jobs (
    id INTEGER PRIMARY KEY,
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_at INTEGER,
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE UNIQUE INDEX scan_jobs_one_queued ON scan_jobs (repository, digest)
    WHERE state = 'queued';
CREATE INDEX scan_jobs_state ON scan_jobs (state, id);
CREATE INDEX scan_jobs_subject ON scan_jobs (repository, digest, id);

-- One result per manifest digest: the inventory a rescan matches again without reading
-- layers, the last vulnerability report, the lint report, the summary (counts and grade) and
-- the vulnerability-database generation (newest import-log id) the report was matched against.
CREATE TABLE scan_results (
    digest TEXT PRIMARY KEY,
    repository TEXT NOT NULL,
    inventory TEXT NOT NULL,
    report TEXT NOT NULL,
    lint TEXT NOT NULL,
    summary TEXT NOT NULL,
    grade TEXT NOT NULL,
    critical INTEGER NOT NULL,
    high INTEGER NOT NULL,
    scanned_at INTEGER NOT NULL,
    matched_at INTEGER NOT NULL,
    vulndb_generation INTEGER NOT NULL
);

CREATE INDEX scan_results_generation ON scan_results (vulndb_generation, matched_at);

CREATE TABLE scan_events (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE INDEX scan_events_kind ON scan_events (kind, id);
