-- Core registry metadata, the same schema as the SQLite store's. Digests are stored as their
-- "algorithm:hex" text; sizes and timestamps (seconds since the epoch) as BIGINT.
--
-- Names, tags and digests use the "C" collation: byte order, as SQLite compares, whatever
-- the database's default collation is. Tag and catalog pagination (`name > last ORDER BY
-- name`) depend on it, and "C" comparisons are also the cheapest.
CREATE TABLE repositories (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE blobs (
    digest TEXT COLLATE "C" PRIMARY KEY,
    size BIGINT NOT NULL,
    last_linked_at BIGINT NOT NULL
);

-- A repository may only reference blobs it was given (pushed or mounted).
CREATE TABLE repo_blobs (
    repo_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT COLLATE "C" NOT NULL REFERENCES blobs(digest),
    linked_at BIGINT NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX repo_blobs_digest ON repo_blobs(digest);

CREATE TABLE manifests (
    repo_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT COLLATE "C" NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    content BYTEA NOT NULL,
    subject TEXT COLLATE "C",
    artifact_type TEXT,
    annotations TEXT,
    pushed_at BIGINT NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX manifests_subject ON manifests(repo_id, subject) WHERE subject IS NOT NULL;
CREATE INDEX manifests_pushed_at ON manifests(pushed_at);

CREATE TABLE manifest_blobs (
    repo_id BIGINT NOT NULL,
    manifest_digest TEXT COLLATE "C" NOT NULL,
    blob_digest TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repo_id, manifest_digest, blob_digest),
    FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_blobs_blob ON manifest_blobs(repo_id, blob_digest);

CREATE TABLE manifest_children (
    repo_id BIGINT NOT NULL,
    parent_digest TEXT COLLATE "C" NOT NULL,
    child_digest TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repo_id, parent_digest, child_digest),
    FOREIGN KEY (repo_id, parent_digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);

CREATE TABLE tags (
    repo_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    manifest_digest TEXT COLLATE "C" NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);
CREATE INDEX tags_manifest ON tags(repo_id, manifest_digest);

CREATE TABLE uploads (
    id TEXT COLLATE "C" PRIMARY KEY,
    repository TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX uploads_updated_at ON uploads(updated_at);
