-- Scanning in the server (see bulwark_scanner::jobs): the scan job queue, the stored results
-- per manifest digest and the scanner's events. JSON values are TEXT (stored and read back
-- verbatim); times Unix seconds. Same tables and columns as the SQLite schema.
--
-- A job is 'queued', 'running' (claimed_by/claimed_at: the worker and its lease start),
-- 'done' or 'failed'. At most one queued job per (repository, digest). Workers of several
-- replicas claim with FOR UPDATE SKIP LOCKED.
CREATE TABLE scan_jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository TEXT COLLATE "C" NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_at BIGINT,
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE UNIQUE INDEX scan_jobs_one_queued ON scan_jobs (repository, digest)
    WHERE state = 'queued';
CREATE INDEX scan_jobs_state ON scan_jobs (state, id);
CREATE INDEX scan_jobs_subject ON scan_jobs (repository, digest, id);

CREATE TABLE scan_results (
    digest TEXT COLLATE "C" PRIMARY KEY,
    repository TEXT NOT NULL,
    inventory TEXT NOT NULL,
    report TEXT NOT NULL,
    lint TEXT NOT NULL,
    summary TEXT NOT NULL,
    grade TEXT NOT NULL,
    critical BIGINT NOT NULL,
    high BIGINT NOT NULL,
    scanned_at BIGINT NOT NULL,
    matched_at BIGINT NOT NULL,
    vulndb_generation BIGINT NOT NULL
);

CREATE INDEX scan_results_generation ON scan_results (vulndb_generation, matched_at);

CREATE TABLE scan_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL,
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX scan_events_kind ON scan_events (kind, id);
