-- Access control: users, teams, projects, members, per-repository rules, robot accounts,
-- personal access tokens and token signing keys. Names compare byte for byte (BINARY), so
-- every lookup is exact and case-sensitive. Roles are stored as their lowercase names
-- ('reader', 'developer', 'maintainer', 'admin'); permission lists as JSON text; secrets only
-- as hashes (argon2id PHC strings for passwords, hex SHA-256 for robot secrets and tokens).
--
-- A project role or rule belongs to a user or to a team: exactly one of `user_id` and
-- `team_id` is set, each a foreign key, so deleting the user, team or project removes it.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    email TEXT,
    password_hash TEXT,
    system_admin INTEGER NOT NULL DEFAULT 0 CHECK (system_admin IN (0, 1)),
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at INTEGER NOT NULL
);

CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE team_members (
    team_id INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
) WITHOUT ROWID;
CREATE INDEX team_members_user ON team_members(user_id);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    created_at INTEGER NOT NULL
);

CREATE TABLE project_members (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    team_id INTEGER REFERENCES teams(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    CHECK ((user_id IS NULL) <> (team_id IS NULL)),
    UNIQUE (project_id, user_id),
    UNIQUE (project_id, team_id)
);
CREATE INDEX project_members_user ON project_members(user_id) WHERE user_id IS NOT NULL;
CREATE INDEX project_members_team ON project_members(team_id) WHERE team_id IS NOT NULL;

CREATE TABLE repo_rules (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    pattern TEXT NOT NULL,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    team_id INTEGER REFERENCES teams(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    CHECK ((user_id IS NULL) <> (team_id IS NULL))
);
CREATE INDEX repo_rules_project ON repo_rules(project_id);
CREATE INDEX repo_rules_user ON repo_rules(user_id) WHERE user_id IS NOT NULL;
CREATE INDEX repo_rules_team ON repo_rules(team_id) WHERE team_id IS NOT NULL;

-- `project_id` NULL: a system robot.
CREATE TABLE robots (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    project_id INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    description TEXT,
    permissions TEXT NOT NULL,
    expires_at INTEGER,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX robots_project ON robots(project_id) WHERE project_id IS NOT NULL;

CREATE TABLE personal_tokens (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    permissions TEXT NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX personal_tokens_user ON personal_tokens(user_id, created_at);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    private_pem TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    valid_until INTEGER
);
