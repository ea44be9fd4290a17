-- Trust policies per project and the log of pull decisions taken under them
-- (see bulwark_trust::policy and bulwark_trust::enforce).
--
-- A deleted policy keeps its row with a NULL document so that versions never repeat: cached
-- decisions are keyed by version. Decisions are folded per flush window: identical
-- (repository, digest, subject, decision, reason) rows carry a count and a time span.
CREATE TABLE trust_policies (
    project TEXT PRIMARY KEY,
    document TEXT,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE TABLE trust_decisions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project TEXT NOT NULL,
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    subject TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    count BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL
);
CREATE INDEX trust_decisions_project ON trust_decisions(project, last_at);
CREATE INDEX trust_decisions_last_at ON trust_decisions(last_at);

-- Parent lookups for trust decisions on platform manifests of signed indexes.
CREATE INDEX manifest_children_child ON manifest_children(repo_id, child_digest);
