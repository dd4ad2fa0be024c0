//! The HTTP API through `app(state).oneshot(req)` (and a real socket where raw bytes
//! matter): RBAC on every route, sessions and CSRF, files, records, hostile input.

mod api;
mod contract;
mod dav;
mod edges;
mod events;
mod fuzz;
mod invitations;
mod load;
mod raw;
mod rbac;
mod records;
mod rights;
mod sessions;
mod telemetry;
mod usage;

use std::collections::HashMap;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use coffer::control::{MemberChange, NewUser, Role, Tenant};
use coffer::http::{AppState, CSRF_HEADER, SESSION_COOKIE, app};
use coffer::names::Email;
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

/// The people of every HTTP test: owner, admin, member, viewer and auditor of `alpha`;
/// `Stranger`, owner of `bravo`; `Operator`, a platform operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Who {
    Owner,
    Admin,
    Member,
    Viewer,
    Auditor,
    Stranger,
    Operator,
}

impl Who {
    pub const ALL: [Who; 7] = [
        Who::Owner,
        Who::Admin,
        Who::Member,
        Who::Viewer,
        Who::Auditor,
        Who::Stranger,
        Who::Operator,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Who::Owner => "owner",
            Who::Admin => "admin",
            Who::Member => "member",
            Who::Viewer => "viewer",
            Who::Auditor => "auditor",
            Who::Stranger => "stranger",
            Who::Operator => "operator",
        }
    }

    pub fn email(self) -> String {
        format!("{}@test.example", self.name())
    }
}

/// A world with an app and every `Who` signed in.
pub struct TestApp {
    pub world: World,
    pub state: AppState,
    pub app: Router,
    pub actors: HashMap<Who, Actor>,
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
        let control = world.coffer.control();
        let mut actors = HashMap::new();
        let membership = |who: Who| -> Option<(&Tenant, Role)> {
            match who {
                Who::Owner => Some((&world.alpha, Role::Owner)),
                Who::Admin => Some((&world.alpha, Role::Admin)),
                Who::Member => Some((&world.alpha, Role::Member)),
                Who::Viewer => Some((&world.alpha, Role::Viewer)),
                Who::Auditor => Some((&world.alpha, Role::Auditor)),
                Who::Stranger => Some((&world.bravo, Role::Owner)),
                Who::Operator => None,
            }
        };
        for who in Who::ALL {
            let email = who.email();
            let user = control
                .create_user(
                    &op,
                    &NewUser {
                        email: Email::parse(&email).unwrap(),
                        name: who.name().into(),
                        password_hash: Some(hash.clone()),
                        is_operator: who == Who::Operator,
                    },
                )
                .unwrap();
            if let Some((tenant, role)) = membership(who) {
                world
                    .access(tenant)
                    .change_member(control, user.id, role, MemberChange::Add)
                    .unwrap();
            }
            let session = world
                .coffer
                .auth()
                .login(&email, PASSWORD, None, None, Instant::now())
                .unwrap();
            actors.insert(
                who,
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

    pub fn actor(&self, who: Who) -> &Actor {
        &self.actors[&who]
    }

    /// Makes `Who::Owner` an owner of `tenant` too.
    pub fn make_owner(&self, tenant: &Tenant) {
        let control = self.world.coffer.control();
        let owner = control
            .user_by_email(&Email::parse(&Who::Owner.email()).unwrap())
            .unwrap()
            .unwrap();
        self.world
            .access(tenant)
            .change_member(control, owner.id, Role::Owner, MemberChange::Add)
            .unwrap();
    }

    /// A request as `who` (cookie plus CSRF header), or anonymous for `None`.
    pub fn request(
        &self,
        method: Method,
        uri: &str,
        who: Option<Who>,
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

    pub async fn call(&self, method: Method, uri: &str, who: Option<Who>) -> Reply {
        self.send(self.request(method, uri, who).body(Body::empty()).unwrap())
            .await
    }

    pub async fn json(
        &self,
        method: Method,
        uri: &str,
        who: Option<Who>,
        body: serde_json::Value,
    ) -> Reply {
        let req = self
            .request(method, uri, who)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(req).await
    }

    /// A lifecycle action (`restrict`, `unrestrict`, ...) on `tenant` by its owner.
    pub async fn lifecycle(&self, tenant: &str, action: &str) {
        let reply = self
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{tenant}/lifecycle"),
                Some(Who::Owner),
                serde_json::json!({ "action": action }),
            )
            .await;
        assert!(reply.status.is_success(), "{action}: {:?}", reply.body);
    }

    pub async fn put_file(&self, uri: &str, who: Option<Who>, bytes: &'static [u8]) -> Reply {
        self.send(
            self.request(Method::PUT, uri, who)
                .body(Body::from(bytes))
                .unwrap(),
        )
        .await
    }
}
