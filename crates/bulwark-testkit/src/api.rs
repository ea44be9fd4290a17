//! Helpers for the `/api/v1` management API, called as the admin unless they say otherwise.

use serde_json::{Value, json};

use crate::http::{Auth, HttpResponse};
use crate::server::TestServer;

/// A robot account as created: its full name (`robot$<project>+<short>`) and its secret.
#[derive(Debug, Clone)]
pub struct Robot {
    pub name: String,
    pub secret: String,
}

impl Robot {
    /// Basic credentials of this robot.
    pub fn auth(&self) -> Auth<'_> {
        Auth::Basic(&self.name, &self.secret)
    }
}

/// A personal access token as created: its id (for revocation) and the `bwk_…` secret.
#[derive(Debug, Clone)]
pub struct PersonalToken {
    pub id: String,
    pub token: String,
}

impl TestServer {
    /// A JSON request to the management API; `path` is below `/api/v1` (e.g. `/users`).
    pub fn api(
        &self,
        auth: Auth<'_>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> HttpResponse {
        let target = format!("/api/v1{path}");
        match body {
            Some(body) => {
                let bytes = serde_json::to_vec(body).expect("serialize a JSON body");
                let headers = [("Content-Type", "application/json")];
                self.request_as(auth, method, &target, &headers, &bytes)
            }
            None => self.request_as(auth, method, &target, &[], &[]),
        }
    }

    /// `POST /api/v1/users` as the admin; panics unless 201.
    pub fn create_user(&self, name: &str, password: &str) -> Value {
        let body = json!({ "name": name, "password": password });
        let resp = self.api(Auth::Admin, "POST", "/users", Some(&body));
        resp.expect_status(201);
        resp.json()
    }

    /// `POST /api/v1/projects` (`visibility`: `public` or `private`) as the admin; panics
    /// unless 201.
    pub fn create_project(&self, name: &str, visibility: &str) -> Value {
        let body = json!({ "name": name, "visibility": visibility });
        let resp = self.api(Auth::Admin, "POST", "/projects", Some(&body));
        resp.expect_status(201);
        resp.json()
    }

    /// `PUT /api/v1/projects/{project}/members` for user `user` with `role` as the admin;
    /// panics unless 204.
    pub fn add_member(&self, project: &str, user: &str, role: &str) {
        let body = json!({ "kind": "user", "name": user, "role": role });
        let path = format!("/projects/{project}/members");
        self.api(Auth::Admin, "PUT", &path, Some(&body))
            .expect_status(204);
    }

    /// `POST /api/v1/projects/{project}/robots` as the admin: robot `short` with
    /// `(pattern, actions)` permissions; panics unless 201 with a name and a secret.
    pub fn create_robot(
        &self,
        project: &str,
        short: &str,
        permissions: &[(&str, &[&str])],
        expires_in_secs: Option<u64>,
    ) -> Robot {
        let path = format!("/projects/{project}/robots");
        self.create_robot_at(&path, short, permissions, expires_in_secs)
    }

    /// `POST /api/v1/robots` (a system robot) as the admin; panics unless 201.
    pub fn create_system_robot(&self, short: &str, permissions: &[(&str, &[&str])]) -> Robot {
        self.create_robot_at("/robots", short, permissions, None)
    }

    fn create_robot_at(
        &self,
        path: &str,
        short: &str,
        permissions: &[(&str, &[&str])],
        expires_in_secs: Option<u64>,
    ) -> Robot {
        let permissions: Vec<Value> = permissions
            .iter()
            .map(|(pattern, actions)| json!({ "pattern": pattern, "actions": actions }))
            .collect();
        let mut body = json!({ "name": short, "permissions": permissions });
        if let Some(secs) = expires_in_secs {
            body["expires_in_secs"] = secs.into();
        }
        let resp = self.api(Auth::Admin, "POST", path, Some(&body));
        resp.expect_status(201);
        let v = resp.json();
        let field = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("POST /api/v1{path} answered without {k}: {v}"))
                .to_owned()
        };
        Robot {
            name: field("name"),
            secret: field("secret"),
        }
    }

    /// `POST /api/v1/users/{user}/tokens` as the admin: a personal access token named `name`,
    /// restricted to `permissions` when not empty; panics unless 201.
    pub fn create_personal_token(
        &self,
        user: &str,
        name: &str,
        permissions: &[(&str, &[&str])],
    ) -> PersonalToken {
        let mut body = json!({ "name": name });
        if !permissions.is_empty() {
            let list: Vec<Value> = permissions
                .iter()
                .map(|(pattern, actions)| json!({ "pattern": pattern, "actions": actions }))
                .collect();
            body["permissions"] = list.into();
        }
        let path = format!("/users/{user}/tokens");
        let resp = self.api(Auth::Admin, "POST", &path, Some(&body));
        resp.expect_status(201);
        let v = resp.json();
        let id = match &v["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => panic!("POST /api/v1{path} answered id {other}: {v}"),
        };
        let token = v["token"]
            .as_str()
            .unwrap_or_else(|| panic!("POST /api/v1{path} answered without a token: {v}"))
            .to_owned();
        PersonalToken { id, token }
    }

    /// `DELETE /api/v1/users/{user}/tokens/{id}` as the admin; panics unless 204.
    pub fn revoke_personal_token(&self, user: &str, id: &str) {
        let path = format!("/users/{user}/tokens/{id}");
        self.api(Auth::Admin, "DELETE", &path, None)
            .expect_status(204);
    }
}
