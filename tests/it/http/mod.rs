//! The HTTP API through `app(state).oneshot(req)` (and a real socket where raw bytes
//! matter): RBAC on every route, sessions and CSRF, files, records, hostile input.

mod api;
mod fuzz;
mod raw;
mod rbac;
mod sessions;

use std::collections::HashMap;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use coffer::control::Role;
use coffer::http::{AppState, CSRF_HEADER, SESSION_COOKIE, app};
use coffer::vault::path::Email;
use tower::ServiceExt;

use crate::support::{World, operator};

pub const PASSWORD: &str = "correct horse battery staple";

/// A signed-in actor: the cookie to send and the CSRF token to echo.
#[derive(Clone)]
pub struct Actor {
    pub user_id: String,
    pub cookie: String,
    pub csrf: String,
}

/// A world with an app and signed-in actors: owner, admin, member, viewer and auditor of
/// `alpha`; `stranger`, owner of `bravo`; `operator`, a platform operator.
pub struct TestApp {
    pub world: World,
    pub state: AppState,
    pub app: Router,
    pub actors: HashMap<&'static str, Actor>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("").to_owned()
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Default for TestApp {
    fn default() -> Self {
        TestApp::new()
    }
}

impl TestApp {
    pub fn new() -> TestApp {
        TestApp::with_world(World::new())
    }

    pub fn with_world(world: World) -> TestApp {
        let state = AppState::new(world.coffer.clone()).unwrap();
        let hash = coffer::auth::password::hash(PASSWORD).unwrap();
        let op = operator();
        let control = &world.coffer.control;
        let mut actors = HashMap::new();
        type Person<'a> = (
            &'static str,
            Option<(&'a coffer::control::Tenant, Role)>,
            bool,
        );
        let people: [Person<'_>; 7] = [
            ("owner", Some((&world.alpha, Role::Owner)), false),
            ("admin", Some((&world.alpha, Role::Admin)), false),
            ("member", Some((&world.alpha, Role::Member)), false),
            ("viewer", Some((&world.alpha, Role::Viewer)), false),
            ("auditor", Some((&world.alpha, Role::Auditor)), false),
            ("stranger", Some((&world.bravo, Role::Owner)), false),
            ("operator", None, true),
        ];
        for (name, membership, is_operator) in people {
            let email = format!("{name}@test.example");
            let user = control
                .create_user(
                    &op,
                    &Email::parse(&email).unwrap(),
                    name,
                    Some(&hash),
                    is_operator,
                )
                .unwrap();
            if let Some((tenant, role)) = membership {
                control.set_member(&op, tenant.id, user.id, role).unwrap();
            }
            let session = state
                .auth
                .login(&email, PASSWORD, None, None, Instant::now())
                .unwrap();
            actors.insert(
                name,
                Actor {
                    user_id: user.id.to_string(),
                    cookie: format!("{SESSION_COOKIE}={}", session.token),
                    csrf: session.csrf_token,
                },
            );
        }
        let app = app(state.clone());
        TestApp {
            world,
            state,
            app,
            actors,
        }
    }

    pub fn actor(&self, name: &str) -> &Actor {
        &self.actors[name]
    }

    /// A request as `who` (cookie plus CSRF header), or anonymous for `None`.
    pub fn request(
        &self,
        method: Method,
        uri: &str,
        who: Option<&str>,
    ) -> axum::http::request::Builder {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "coffer.test");
        if let Some(who) = who {
            let a = self.actor(who);
            b = b.header("cookie", &a.cookie).header(CSRF_HEADER, &a.csrf);
        }
        b
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn call(&self, method: Method, uri: &str, who: Option<&str>) -> Reply {
        self.send(self.request(method, uri, who).body(Body::empty()).unwrap())
            .await
    }

    pub async fn json(
        &self,
        method: Method,
        uri: &str,
        who: Option<&str>,
        body: serde_json::Value,
    ) -> Reply {
        let req = self
            .request(method, uri, who)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(req).await
    }

    pub async fn put_file(&self, uri: &str, who: Option<&str>, bytes: &'static [u8]) -> Reply {
        self.send(
            self.request(Method::PUT, uri, who)
                .body(Body::from(bytes))
                .unwrap(),
        )
        .await
    }
}
