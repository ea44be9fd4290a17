-- Access control, the same schema as the SQLite store's: users, teams, projects, members,
-- per-repository rules, robot accounts, personal access tokens and token signing keys.
-- Names, ids and patterns use the "C" collation: exact, case-sensitive, byte-ordered lookups
-- and listings, whatever the database's default collation is. Roles are stored as their
-- lowercase names; permission lists as JSON text; secrets only as hashes (argon2id PHC
-- strings for passwords, hex SHA-256 for robot secrets and tokens).
--
-- A project role or rule belongs to a user or to a team: exactly one of `user_id` and
-- `team_id` is set, each a foreign key, so deleting the user, team or project removes it.
CREATE TABLE users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    email TEXT,
    password_hash TEXT,
    system_admin BOOLEAN NOT NULL DEFAULT FALSE,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
-- The last-admin check locks these rows.
CREATE INDEX users_enabled_admins ON users(id) WHERE system_admin AND NOT disabled;

CREATE TABLE teams (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_id BIGINT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);

CREATE TABLE projects (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    created_at BIGINT NOT NULL
);

CREATE TABLE project_members (
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
    team_id BIGINT REFERENCES teams(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    CHECK ((user_id IS NULL) <> (team_id IS NULL)),
    UNIQUE (project_id, user_id),
    UNIQUE (project_id, team_id)
);
CREATE INDEX project_members_user ON project_members(user_id) WHERE user_id IS NOT NULL;
CREATE INDEX project_members_team ON project_members(team_id) WHERE team_id IS NOT NULL;

CREATE TABLE repo_rules (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    pattern TEXT COLLATE "C" NOT NULL,
    user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
    team_id BIGINT REFERENCES teams(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    CHECK ((user_id IS NULL) <> (team_id IS NULL))
);
CREATE INDEX repo_rules_project ON repo_rules(project_id);
CREATE INDEX repo_rules_user ON repo_rules(user_id) WHERE user_id IS NOT NULL;
CREATE INDEX repo_rules_team ON repo_rules(team_id) WHERE team_id IS NOT NULL;

-- `project_id` NULL: a system robot.
CREATE TABLE robots (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    project_id BIGINT REFERENCES projects(id) ON DELETE CASCADE,
    description TEXT,
    permissions TEXT NOT NULL,
    expires_at BIGINT,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX robots_project ON robots(project_id) WHERE project_id IS NOT NULL;

CREATE TABLE personal_tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    permissions TEXT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX personal_tokens_user ON personal_tokens(user_id, created_at);

CREATE TABLE signing_keys (
    kid TEXT COLLATE "C" PRIMARY KEY,
    private_pem TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    valid_until BIGINT
);
