//! What `Auth` remembers so that a request whose credentials it has seen recently is
//! authorized without a database read or a blocking thread: sessions, API tokens and
//! memberships, each valid only while the control plane's change stamp is the one it
//! was read under. Every committed control-plane change (a logout, a revoked token, a
//! removed member, a password change) moves the stamp, so a revocation takes effect on
//! the next request, in this process or (through SQLite's `data_version`) from another.
//!
//! Also the touch book: when a session was last seen and a token last used are usage
//! facts, not authorization; they are collected here and written in one transaction by
//! `Auth::flush_touches`, never on a request's path.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use crate::control::{ApiToken, ChangeStamp, Role, Tenant, Touch, User};
use crate::db;
use crate::names::UserId;

/// Entries kept per map; past it the map starts over (the slow path refills it).
const MAX_ENTRIES: usize = 20_000;

struct Stamped<T> {
    stamp: ChangeStamp,
    value: T,
}

/// A map whose entries are valid only under the stamp they were stored with.
struct StampedMap<K, V>(Mutex<HashMap<K, Stamped<V>>>);

impl<K: Eq + Hash, V: Clone> StampedMap<K, V> {
    fn new() -> Self {
        StampedMap(Mutex::new(HashMap::new()))
    }

    fn get(&self, key: &K, stamp: ChangeStamp) -> Option<V> {
        let map = db::lock(&self.0);
        map.get(key)
            .filter(|e| e.stamp == stamp)
            .map(|e| e.value.clone())
    }

    fn put(&self, key: K, stamp: ChangeStamp, value: V) {
        let mut map = db::lock(&self.0);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, Stamped { stamp, value });
    }
}

/// A live session as cached.
#[derive(Clone)]
pub(super) struct CachedSession {
    pub user: User,
    pub expires_at: String,
}

/// A live token as cached.
#[derive(Clone)]
pub(super) struct CachedToken {
    pub token: ApiToken,
    pub user: User,
}

pub(super) struct AuthCache {
    sessions: StampedMap<String, CachedSession>,
    tokens: StampedMap<String, CachedToken>,
    memberships: StampedMap<(UserId, String), (Tenant, Role)>,
    touches: Mutex<HashMap<(bool, String), String>>,
}

impl AuthCache {
    pub fn new() -> Self {
        AuthCache {
            sessions: StampedMap::new(),
            tokens: StampedMap::new(),
            memberships: StampedMap::new(),
            touches: Mutex::new(HashMap::new()),
        }
    }

    pub fn session(&self, sid: &str, stamp: ChangeStamp) -> Option<CachedSession> {
        self.sessions.get(&sid.to_owned(), stamp)
    }

    pub fn put_session(&self, sid: &str, stamp: ChangeStamp, session: CachedSession) {
        self.sessions.put(sid.to_owned(), stamp, session);
    }

    pub fn token(&self, hash: &str, stamp: ChangeStamp) -> Option<CachedToken> {
        self.tokens.get(&hash.to_owned(), stamp)
    }

    pub fn put_token(&self, hash: &str, stamp: ChangeStamp, token: CachedToken) {
        self.tokens.put(hash.to_owned(), stamp, token);
    }

    pub fn membership(
        &self,
        user: UserId,
        slug: &str,
        stamp: ChangeStamp,
    ) -> Option<(Tenant, Role)> {
        self.memberships.get(&(user, slug.to_owned()), stamp)
    }

    pub fn put_membership(&self, user: UserId, slug: &str, stamp: ChangeStamp, v: (Tenant, Role)) {
        self.memberships.put((user, slug.to_owned()), stamp, v);
    }

    /// Notes that a session was seen (`session == true`) or a token used at `at`.
    pub fn touch(&self, session: bool, id: &str, at: String) {
        db::lock(&self.touches).insert((session, id.to_owned()), at);
    }

    /// Takes every noted touch.
    pub fn take_touches(&self) -> Vec<Touch> {
        db::lock(&self.touches)
            .drain()
            .map(|((session, id), at)| {
                if session {
                    Touch::Session { id, at }
                } else {
                    Touch::Token { id, at }
                }
            })
            .collect()
    }
}
