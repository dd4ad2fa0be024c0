#![allow(dead_code)] // each target uses only part of the world

//! The world the HTTP fuzz bodies share: a data root in a temporary directory, tenant
//! `alpha` with a signed-in owner, the app, and a runtime to drive it. It is rebuilt every
//! `RUNS_PER_WORLD` inputs so that a long fuzzing run stays within a small, bounded disk
//! footprint (and so that no input's effect depends on thousands of earlier ones).
//!
//! Shared by the fuzz targets (`fuzz/fuzz_targets`) and the stable corpus replay test
//! (`tests/it/fuzz_corpus`), through `#[path]`.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, request};
use coffer::audit::{Actor, Caller};
use coffer::coffer::Coffer;
use coffer::config::Config;
use coffer::control::{NewTenant, NewUser, TenantOwner};
use coffer::http::{AppState, CSRF_HEADER, SESSION_COOKIE, app};
use coffer::names::{Email, TenantSlug};
use coffer::vault::index::Entry;
use tower::ServiceExt;

const RUNS_PER_WORLD: u32 = 256;
const PASSWORD: &str = "fuzzing is a kind of testing";
const OWNER: &str = "owner@fuzz.example";
/// Tenant quota: bounds what one world can hold, whatever the inputs import.
const QUOTA: u64 = 8 * 1024 * 1024;
/// Bodies larger than this are not read back (nothing legitimate is).
const MAX_REPLY: usize = 64 * 1024 * 1024;

pub struct World {
    dir: tempfile::TempDir,
    pub coffer: Coffer,
    app: Router,
    runtime: tokio::runtime::Runtime,
    cookie: String,
    csrf: String,
    runs: u32,
}

/// What the app answered.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The invariant of every answer: never a server error, and every refusal is a
    /// problem document with a code.
    pub fn assert_well_formed(&self, what: &str) {
        assert!(
            !self.status.is_server_error(),
            "{what}: {} {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        if self.status.is_client_error() && self.status != StatusCode::NOT_MODIFIED {
            assert_eq!(
                self.header("content-type"),
                Some("application/problem+json"),
                "{what}: {}",
                self.status
            );
            assert!(
                self.json()["code"].is_string(),
                "{what}: refusal without a code"
            );
        }
    }
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's world, building (or rebuilding) it first when due.
pub fn with_world<T>(f: impl FnOnce(&World) -> T) -> T {
    WORLD.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|w| w.runs >= RUNS_PER_WORLD) {
            *slot = None; // the old data root goes before the new one is made
            *slot = Some(World::build());
        }
        let world = slot.as_mut().expect("built above");
        world.runs += 1;
        f(world)
    })
}

impl World {
    fn build() -> World {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path().join("root");
        let (coffer, _) = Coffer::init(&root, Config::default()).expect("init");
        let operator = Caller::new(Actor::Operator(Some("fuzz".into())));
        let hash = coffer::auth::password::hash(PASSWORD).expect("hash");
        coffer
            .create_tenant(
                &operator,
                NewTenant {
                    slug: TenantSlug::parse("alpha").expect("slug"),
                    name: "Alpha".into(),
                    quota_bytes: Some(QUOTA),
                    owner: Some(TenantOwner::New(NewUser {
                        email: Email::parse(OWNER).expect("email"),
                        name: "Owner".into(),
                        password_hash: Some(hash),
                        is_operator: false,
                    })),
                },
            )
            .expect("tenant");
        let session = coffer
            .auth()
            .login(OWNER, PASSWORD, None, None, Instant::now())
            .expect("login");
        let state = AppState::new(coffer.clone()).expect("state");
        World {
            dir,
            coffer,
            app: app(state),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            cookie: format!("{SESSION_COOKIE}={}", session.token),
            csrf: session.csrf_token,
            runs: 0,
        }
    }

    /// A request signed in as the tenant's owner (cookie and CSRF header).
    pub fn owner_request(&self, method: Method, uri: &str) -> request::Builder {
        self.anonymous_request(method, uri)
            .header("cookie", &self.cookie)
            .header(CSRF_HEADER, &self.csrf)
    }

    /// The owner's session cookie, to send without the CSRF header.
    pub fn owner_cookie(&self) -> &str {
        &self.cookie
    }

    pub fn anonymous_request(&self, method: Method, uri: &str) -> request::Builder {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "coffer.fuzz")
    }

    pub fn send(&self, request: Request<Body>) -> Reply {
        self.runtime.block_on(async {
            let response = self.app.clone().oneshot(request).await.expect("infallible");
            let status = response.status();
            let headers = response.headers().clone();
            let body = axum::body::to_bytes(response.into_body(), MAX_REPLY)
                .await
                .expect("body");
            Reply {
                status,
                headers,
                body,
            }
        })
    }

    /// Every entry of `alpha`'s vault, as the operator sees it (no HTTP in between).
    pub fn entries(&self) -> Vec<Entry> {
        let operator = Caller::new(Actor::Operator(Some("fuzz".into())));
        let access = self
            .coffer
            .auth()
            .operator_access(&operator, &TenantSlug::parse("alpha").expect("slug"))
            .expect("operator access");
        access.vault().all_entries().expect("entries")
    }

    /// Nothing appears next to the data root: whatever an input did stayed inside it.
    pub fn assert_nothing_outside(&self) {
        let names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("read temporary directory")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(
            names,
            vec![self.dir.path().join("root")],
            "written outside the data root"
        );
    }
}
