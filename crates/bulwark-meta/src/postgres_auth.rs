//! [`AuthStore`] on PostgreSQL, the same schema and semantics as the SQLite store's (see
//! `migrations/postgres/0002_auth.sql`).
//!
//! Connections run at READ COMMITTED (see [`crate::PostgresStore`]). Most changes are one
//! statement, where unique and foreign keys settle races: a name taken concurrently is a
//! `Conflict`, a row that disappears before a reference to it commits is `NotFound`. The one
//! rule that spans rows, that some enabled system admin always remains, locks rows: a change
//! that could remove an admin first locks the target user and every enabled admin
//! (`FOR UPDATE`, in id order, in one statement), so of two concurrent demotions the second
//! waits for the first, then no longer sees the first's target as an admin and refuses.
//! `grants` reads in one REPEATABLE READ, READ ONLY transaction: a single snapshot.

use async_trait::async_trait;
use bulwark_auth::SecretHash;
use bulwark_auth::policy::{Grants, RepoPattern, Role, Visibility};
use bulwark_auth::store::{
    AuthStore, Member, Membership, NewPersonalToken, NewRobot, NewUser, PersonalToken, Project,
    Robot, StoreError, StoreResult, StoredRepoRule, StoredSigningKey, Team, User, UserCredentials,
};
use sqlx::postgres::{PgArguments, PgPool};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};

use crate::sqlite_auth::common::{
    self, KeyRow, MemberRow, ProjectRow, RobotRow, RuleRow, TeamRow, TokenRow, UserCredRow,
    UserRow, admin_guard, backend, encode_permissions, grants_from, is_foreign_key_violation,
    key_from, member_columns, member_label, membership_from, not_found, project_from, robot_from,
    rule_from, team_from, token_from, unique_or, user_from, visibility_str,
};
use crate::{PostgresStore, to_u64};

/// `NotFound` for the first of `candidates` (what, table, id) that does not exist: the
/// explanation of a foreign key violation. Runs on the pool, outside the failed transaction.
async fn missing(pool: &PgPool, candidates: &[(&str, &'static str, i64)]) -> StoreError {
    for &(what, table, id) in candidates {
        let found: Result<Option<i64>, _> =
            sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await;
        match found {
            Ok(Some(_)) => {}
            Ok(None) => return not_found(format!("{what} {id}")),
            Err(e) => return backend(e),
        }
    }
    let names: Vec<String> = candidates
        .iter()
        .map(|(what, _, id)| format!("{what} {id}"))
        .collect();
    not_found(names.join(" or "))
}

fn member_table(member: Member) -> (&'static str, &'static str, i64) {
    match member {
        Member::User(id) => ("user", "users", id),
        Member::Team(id) => ("team", "teams", id),
    }
}

impl PostgresStore {
    /// Lock the user and every enabled system admin until `tx` ends, and refuse a change that
    /// would remove the last enabled admin. One statement, rows locked in id order, so that
    /// concurrent checks queue rather than deadlock; a row changed meanwhile is re-read after
    /// its lock is granted (READ COMMITTED), and one no longer an enabled admin drops out.
    async fn check_last_admin(tx: &mut PgConnection, user_id: i64) -> StoreResult<()> {
        let rows: Vec<(i64, String, bool)> = sqlx::query_as(
            "SELECT id, name, system_admin AND NOT disabled FROM users
             WHERE id = $1 OR (system_admin AND NOT disabled) ORDER BY id FOR UPDATE",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        admin_guard(user_id, &rows)
    }

    /// Run `statement` (on the user `$1`) after the last-admin check, in one transaction.
    async fn remove_admin_power(&self, user_id: i64, statement: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        Self::check_last_admin(&mut tx, user_id).await?;
        sqlx::query(statement)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    /// Run `query` (an UPDATE or DELETE of one row by id), `NotFound(what)` if no row matched.
    async fn update_one<'q>(
        &self,
        what: String,
        query: Query<'q, Postgres, PgArguments>,
    ) -> StoreResult<()> {
        let done = query.execute(&self.pool).await.map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(not_found(what));
        }
        Ok(())
    }
}

#[async_trait]
impl AuthStore for PostgresStore {
    async fn count_users(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(to_u64(n))
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (name, email, password_hash, system_admin, disabled, created_at)
             VALUES ($1, $2, $3, $4, FALSE, $5) RETURNING id",
        )
        .bind(&user.name)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(user.system_admin)
        .bind(user.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| unique_or(e, || format!("user {} already exists", user.name)))?;
        Ok(User {
            id,
            name: user.name,
            email: user.email,
            system_admin: user.system_admin,
            disabled: false,
            created_at: user.created_at,
        })
    }

    async fn user_by_name(&self, name: &str) -> StoreResult<Option<UserCredentials>> {
        let row: Option<UserCredRow> = sqlx::query_as(&format!(
            "SELECT {}, password_hash FROM users WHERE name = $1",
            common::USER_COLUMNS
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(row.map(common::credentials_from))
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "SELECT {} FROM users WHERE id = $1",
            common::USER_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(row.map(user_from))
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(&format!(
            "SELECT {} FROM users ORDER BY name",
            common::USER_COLUMNS
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(user_from).collect())
    }

    async fn set_password(&self, user_id: i64, password_hash: &str) -> StoreResult<()> {
        self.update_one(
            format!("user {user_id}"),
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(user_id),
        )
        .await
    }

    async fn replace_password_hash(&self, user_id: i64, old: &str, new: &str) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
                .bind(new)
                .bind(user_id)
                .bind(old)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_user_email(&self, user_id: i64, email: Option<&str>) -> StoreResult<()> {
        self.update_one(
            format!("user {user_id}"),
            sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
                .bind(email)
                .bind(user_id),
        )
        .await
    }

    async fn set_user_disabled(&self, user_id: i64, disabled: bool) -> StoreResult<()> {
        if disabled {
            self.remove_admin_power(user_id, "UPDATE users SET disabled = TRUE WHERE id = $1")
                .await
        } else {
            self.update_one(
                format!("user {user_id}"),
                sqlx::query("UPDATE users SET disabled = FALSE WHERE id = $1").bind(user_id),
            )
            .await
        }
    }

    async fn set_system_admin(&self, user_id: i64, system_admin: bool) -> StoreResult<()> {
        if system_admin {
            self.update_one(
                format!("user {user_id}"),
                sqlx::query("UPDATE users SET system_admin = TRUE WHERE id = $1").bind(user_id),
            )
            .await
        } else {
            self.remove_admin_power(
                user_id,
                "UPDATE users SET system_admin = FALSE WHERE id = $1",
            )
            .await
        }
    }

    async fn delete_user(&self, user_id: i64) -> StoreResult<()> {
        // Memberships, rules and tokens go with it (ON DELETE CASCADE).
        self.remove_admin_power(user_id, "DELETE FROM users WHERE id = $1")
            .await
    }

    async fn create_team(&self, name: &str, now: i64) -> StoreResult<Team> {
        let id: i64 =
            sqlx::query_scalar("INSERT INTO teams (name, created_at) VALUES ($1, $2) RETURNING id")
                .bind(name)
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| unique_or(e, || format!("team {name} already exists")))?;
        Ok(Team {
            id,
            name: name.to_owned(),
            created_at: now,
        })
    }

    async fn team_by_name(&self, name: &str) -> StoreResult<Option<Team>> {
        let row: Option<TeamRow> =
            sqlx::query_as("SELECT id, name, created_at FROM teams WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        Ok(row.map(team_from))
    }

    async fn list_teams(&self) -> StoreResult<Vec<Team>> {
        let rows: Vec<TeamRow> =
            sqlx::query_as("SELECT id, name, created_at FROM teams ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        Ok(rows.into_iter().map(team_from).collect())
    }

    async fn delete_team(&self, team_id: i64) -> StoreResult<()> {
        // Memberships and rules go with it (ON DELETE CASCADE).
        self.update_one(
            format!("team {team_id}"),
            sqlx::query("DELETE FROM teams WHERE id = $1").bind(team_id),
        )
        .await
    }

    async fn add_team_member(&self, team_id: i64, user_id: i64) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(team_id)
        .bind(user_id)
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) if is_foreign_key_violation(&e) => Err(missing(
                &self.pool,
                &[("team", "teams", team_id), ("user", "users", user_id)],
            )
            .await),
            Err(e) => Err(backend(e)),
        }
    }

    async fn remove_team_member(&self, team_id: i64, user_id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
            .bind(team_id)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn team_members(&self, team_id: i64) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT u.id, u.name, u.email, u.system_admin, u.disabled, u.created_at
             FROM team_members tm JOIN users u ON u.id = tm.user_id
             WHERE tm.team_id = $1 ORDER BY u.name",
        )
        .bind(team_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(user_from).collect())
    }

    async fn create_project(
        &self,
        name: &str,
        visibility: Visibility,
        now: i64,
    ) -> StoreResult<Project> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO projects (name, visibility, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(visibility_str(visibility))
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| unique_or(e, || format!("project {name} already exists")))?;
        Ok(Project {
            id,
            name: name.to_owned(),
            visibility,
            created_at: now,
        })
    }

    async fn project_by_name(&self, name: &str) -> StoreResult<Option<Project>> {
        let row: Option<ProjectRow> =
            sqlx::query_as("SELECT id, name, visibility, created_at FROM projects WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        row.map(project_from).transpose()
    }

    async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        let rows: Vec<ProjectRow> =
            sqlx::query_as("SELECT id, name, visibility, created_at FROM projects ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        rows.into_iter().map(project_from).collect()
    }

    async fn set_project_visibility(
        &self,
        project_id: i64,
        visibility: Visibility,
    ) -> StoreResult<()> {
        self.update_one(
            format!("project {project_id}"),
            sqlx::query("UPDATE projects SET visibility = $1 WHERE id = $2")
                .bind(visibility_str(visibility))
                .bind(project_id),
        )
        .await
    }

    async fn delete_project(&self, project_id: i64) -> StoreResult<()> {
        // Memberships, rules and robots go with it (ON DELETE CASCADE).
        self.update_one(
            format!("project {project_id}"),
            sqlx::query("DELETE FROM projects WHERE id = $1").bind(project_id),
        )
        .await
    }

    async fn set_member(&self, project_id: i64, member: Member, role: Role) -> StoreResult<()> {
        let (user_id, team_id) = member_columns(member);
        let target = if user_id.is_some() {
            "project_id, user_id"
        } else {
            "project_id, team_id"
        };
        let done = sqlx::query(&format!(
            "INSERT INTO project_members (project_id, user_id, team_id, role)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT ({target}) DO UPDATE SET role = excluded.role"
        ))
        .bind(project_id)
        .bind(user_id)
        .bind(team_id)
        .bind(role.as_str())
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) if is_foreign_key_violation(&e) => Err(missing(
                &self.pool,
                &[("project", "projects", project_id), member_table(member)],
            )
            .await),
            Err(e) => Err(backend(e)),
        }
    }

    async fn remove_member(&self, project_id: i64, member: Member) -> StoreResult<bool> {
        let (user_id, team_id) = member_columns(member);
        let done = sqlx::query(
            "DELETE FROM project_members
             WHERE project_id = $1 AND (user_id = $2 OR team_id = $3)",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(team_id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_members(&self, project_id: i64) -> StoreResult<Vec<Membership>> {
        let rows: Vec<MemberRow> = sqlx::query_as(
            "SELECT pm.user_id, pm.team_id, COALESCE(u.name, t.name), pm.role
             FROM project_members pm
             LEFT JOIN users u ON u.id = pm.user_id
             LEFT JOIN teams t ON t.id = pm.team_id
             WHERE pm.project_id = $1
             ORDER BY COALESCE(u.name, t.name), pm.team_id IS NOT NULL,
                      COALESCE(pm.user_id, pm.team_id)",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(membership_from).collect()
    }

    async fn add_repo_rule(
        &self,
        project_id: i64,
        pattern: &RepoPattern,
        member: Member,
        role: Role,
    ) -> StoreResult<StoredRepoRule> {
        let (user_id, team_id) = member_columns(member);
        let project: Option<String> = sqlx::query_scalar("SELECT name FROM projects WHERE id = $1")
            .bind(project_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let Some(project) = project else {
            return Err(not_found(format!("project {project_id}")));
        };
        // A project deleted meanwhile fails the foreign key, like a missing member.
        let id: Result<i64, _> = sqlx::query_scalar(
            "INSERT INTO repo_rules (project_id, pattern, user_id, team_id, role)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(project_id)
        .bind(pattern.as_str())
        .bind(user_id)
        .bind(team_id)
        .bind(role.as_str())
        .fetch_one(&self.pool)
        .await;
        let id = match id {
            Ok(id) => id,
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(missing(
                    &self.pool,
                    &[("project", "projects", project_id), member_table(member)],
                )
                .await);
            }
            Err(e) => return Err(backend(e)),
        };
        Ok(StoredRepoRule {
            id,
            project,
            pattern: pattern.clone(),
            member,
            role,
        })
    }

    async fn list_repo_rules(&self, project_id: i64) -> StoreResult<Vec<StoredRepoRule>> {
        let rows: Vec<RuleRow> = sqlx::query_as(
            "SELECT r.id, p.name, r.pattern, r.user_id, r.team_id, r.role
             FROM repo_rules r JOIN projects p ON p.id = r.project_id
             WHERE r.project_id = $1 ORDER BY r.id",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(rule_from).collect()
    }

    async fn delete_repo_rule(&self, project_id: i64, rule_id: i64) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM repo_rules WHERE id = $1 AND project_id = $2")
            .bind(rule_id)
            .bind(project_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn grants(&self, user_id: Option<i64>, project: &str) -> StoreResult<Grants> {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(backend)?;
        let found: Option<(i64, String)> =
            sqlx::query_as("SELECT id, visibility FROM projects WHERE name = $1")
                .bind(project)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        let Some((project_id, visibility)) = found else {
            return Ok(Grants::new(project, Visibility::Private));
        };
        let Some(user_id) = user_id else {
            return grants_from(project, &visibility, None, Vec::new(), Vec::new());
        };
        let direct: Option<String> = sqlx::query_scalar(
            "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let team_roles: Vec<String> = sqlx::query_scalar(
            "SELECT pm.role FROM project_members pm
             JOIN team_members tm ON tm.team_id = pm.team_id
             WHERE pm.project_id = $1 AND tm.user_id = $2 ORDER BY pm.team_id",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let rules: Vec<(String, String)> = sqlx::query_as(
            "SELECT pattern, role FROM repo_rules
             WHERE project_id = $1 AND (user_id = $2
                 OR team_id IN (SELECT team_id FROM team_members WHERE user_id = $2))
             ORDER BY id",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        grants_from(project, &visibility, direct, team_roles, rules)
    }

    async fn projects_of_user(&self, user_id: i64) -> StoreResult<Vec<Project>> {
        let rows: Vec<ProjectRow> = sqlx::query_as(
            "SELECT p.id, p.name, p.visibility, p.created_at FROM projects p
             WHERE EXISTS (SELECT 1 FROM project_members pm WHERE pm.project_id = p.id
                   AND (pm.user_id = $1
                        OR pm.team_id IN (SELECT team_id FROM team_members WHERE user_id = $1)))
                OR EXISTS (SELECT 1 FROM repo_rules r WHERE r.project_id = p.id
                   AND (r.user_id = $1
                        OR r.team_id IN (SELECT team_id FROM team_members WHERE user_id = $1)))
             ORDER BY p.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(project_from).collect()
    }

    async fn create_robot(&self, robot: NewRobot) -> StoreResult<Robot> {
        let permissions = encode_permissions(&robot.permissions)?;
        let project_id = match &robot.project {
            None => None,
            Some(name) => {
                let id: Option<i64> = sqlx::query_scalar("SELECT id FROM projects WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend)?;
                Some(id.ok_or_else(|| not_found(format!("project {name}")))?)
            }
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO robots (name, project_id, description, permissions, expires_at,
                                 disabled, secret_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, FALSE, $6, $7) RETURNING id",
        )
        .bind(&robot.name)
        .bind(project_id)
        .bind(&robot.description)
        .bind(&permissions)
        .bind(robot.expires_at)
        .bind(robot.secret_hash.to_hex())
        .bind(robot.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                // The project was deleted since the lookup.
                not_found(format!(
                    "project {}",
                    robot.project.as_deref().unwrap_or("")
                ))
            } else {
                unique_or(e, || format!("robot {} already exists", robot.name))
            }
        })?;
        Ok(Robot {
            id,
            name: robot.name,
            project: robot.project,
            description: robot.description,
            permissions: robot.permissions,
            expires_at: robot.expires_at,
            disabled: false,
            created_at: robot.created_at,
        })
    }

    async fn robot_by_name(&self, name: &str) -> StoreResult<Option<(Robot, SecretHash)>> {
        let row: Option<RobotRow> = sqlx::query_as(&format!(
            "SELECT {} FROM robots r LEFT JOIN projects p ON p.id = r.project_id
             WHERE r.name = $1",
            common::ROBOT_COLUMNS
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(robot_from).transpose()
    }

    async fn list_robots(&self, project: Option<&str>) -> StoreResult<Vec<Robot>> {
        let rows: Vec<RobotRow> = sqlx::query_as(&format!(
            "SELECT {} FROM robots r LEFT JOIN projects p ON p.id = r.project_id
             WHERE $1::text IS NULL OR p.name = $1 ORDER BY r.name",
            common::ROBOT_COLUMNS
        ))
        .bind(project)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|r| robot_from(r).map(|(robot, _)| robot))
            .collect()
    }

    async fn set_robot_disabled(&self, robot_id: i64, disabled: bool) -> StoreResult<()> {
        self.update_one(
            format!("robot {robot_id}"),
            sqlx::query("UPDATE robots SET disabled = $1 WHERE id = $2")
                .bind(disabled)
                .bind(robot_id),
        )
        .await
    }

    async fn set_robot_secret(&self, robot_id: i64, secret_hash: &SecretHash) -> StoreResult<()> {
        self.update_one(
            format!("robot {robot_id}"),
            sqlx::query("UPDATE robots SET secret_hash = $1 WHERE id = $2")
                .bind(secret_hash.to_hex())
                .bind(robot_id),
        )
        .await
    }

    async fn delete_robot(&self, robot_id: i64) -> StoreResult<()> {
        self.update_one(
            format!("robot {robot_id}"),
            sqlx::query("DELETE FROM robots WHERE id = $1").bind(robot_id),
        )
        .await
    }

    async fn create_token(&self, token: NewPersonalToken) -> StoreResult<PersonalToken> {
        let permissions = encode_permissions(&token.permissions)?;
        let done = sqlx::query(
            "INSERT INTO personal_tokens (id, user_id, name, permissions, expires_at, revoked_at,
                                          secret_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)",
        )
        .bind(&token.id)
        .bind(token.user_id)
        .bind(&token.name)
        .bind(&permissions)
        .bind(token.expires_at)
        .bind(token.secret_hash.to_hex())
        .bind(token.created_at)
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => {}
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(not_found(member_label(Member::User(token.user_id))));
            }
            Err(e) => {
                return Err(unique_or(e, || {
                    format!("token {} already exists", token.id)
                }));
            }
        }
        Ok(PersonalToken {
            id: token.id,
            user_id: token.user_id,
            name: token.name,
            permissions: token.permissions,
            expires_at: token.expires_at,
            revoked_at: None,
            created_at: token.created_at,
        })
    }

    async fn token_by_id(&self, id: &str) -> StoreResult<Option<(PersonalToken, SecretHash)>> {
        let row: Option<TokenRow> = sqlx::query_as(&format!(
            "SELECT {} FROM personal_tokens WHERE id = $1",
            common::TOKEN_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(token_from).transpose()
    }

    async fn list_tokens(&self, user_id: i64) -> StoreResult<Vec<PersonalToken>> {
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "SELECT {} FROM personal_tokens WHERE user_id = $1 ORDER BY created_at, id",
            common::TOKEN_COLUMNS
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|r| token_from(r).map(|(token, _)| token))
            .collect()
    }

    async fn revoke_token(&self, id: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE personal_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, private_pem, created_at, valid_until FROM signing_keys
             ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(key_from).collect())
    }

    async fn add_signing_key(&self, key: StoredSigningKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_pem, created_at, valid_until)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&key.kid)
        .bind(&key.private_pem)
        .bind(key.created_at)
        .bind(key.valid_until)
        .execute(&self.pool)
        .await
        .map_err(|e| unique_or(e, || format!("signing key {} already exists", key.kid)))?;
        Ok(())
    }

    async fn retire_signing_key(&self, kid: &str, valid_until: i64) -> StoreResult<()> {
        self.update_one(
            format!("signing key {kid}"),
            sqlx::query("UPDATE signing_keys SET valid_until = $1 WHERE kid = $2")
                .bind(valid_until)
                .bind(kid),
        )
        .await
    }

    async fn prune_signing_keys(&self, now: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM signing_keys WHERE valid_until IS NOT NULL AND valid_until < $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }
}
