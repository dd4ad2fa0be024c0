//! The connections a node keeps to the control database: at most the pool's size, made on
//! demand, reused, and dropped when the server closed them. Their I/O runs on the
//! store's own small runtime (one thread), so callers block on answers from any thread
//! without ever blocking a runtime's worker on its own I/O.

use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, Config};

use super::tls::Tls;

use super::wait;
use crate::control::ControlError;
use crate::db::lock;

/// How long a request waits for a connection before it fails (503).
const POOL_WAIT: Duration = Duration::from_secs(10);
/// Every statement and lock wait is bounded, so a stalled node cannot hold the control
/// plane's write lock (and every node's control writes) indefinitely: its transaction
/// is cut and rolled back.
const SESSION_LIMITS: &str = "SET statement_timeout = '30s'; SET lock_timeout = '15s';
     SET idle_in_transaction_session_timeout = '30s'";

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Pool {
    /// Connections kept at most: requests beyond it wait for one.
    size: usize,
    config: Config,
    tls: Tls,
    /// `Some` until the store is dropped (then shut down without waiting: dropping a
    /// runtime inside another runtime's thread is not allowed).
    runtime: Option<tokio::runtime::Runtime>,
    state: Mutex<State>,
    returned: Condvar,
}

#[derive(Default)]
struct State {
    idle: Vec<Client>,
    /// Connections handed out or idle.
    open: usize,
}

impl Pool {
    pub fn new(mut config: Config, tls: Tls, size: usize) -> Result<Self, ControlError> {
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("coffer");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("control-db")
            .enable_all()
            .build()
            .map_err(|e| ControlError::Postgres(format!("runtime: {e}")))?;
        Ok(Pool {
            size,
            config,
            tls,
            runtime: Some(runtime),
            state: Mutex::default(),
            returned: Condvar::new(),
        })
    }

    pub fn runtime(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the pool")
            .handle()
    }

    /// Another pool to the same database (its own connections and thread).
    pub fn sibling(&self, size: usize) -> Result<Pool, ControlError> {
        Pool::new(self.config.clone(), self.tls.clone(), size)
    }

    /// A connection: an idle one, a new one while fewer than `size` are open, or
    /// the next one returned within `POOL_WAIT`.
    pub fn get(&self) -> Result<Pooled<'_>, ControlError> {
        let deadline = Instant::now() + POOL_WAIT;
        let mut state = lock(&self.state);
        loop {
            while let Some(client) = state.idle.pop() {
                if !client.is_closed() {
                    return Ok(Pooled {
                        pool: self,
                        client: Some(client),
                    });
                }
                state.open -= 1;
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(client) => Ok(Pooled {
                        pool: self,
                        client: Some(client),
                    }),
                    Err(e) => {
                        lock(&self.state).open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ControlError::Unavailable(format!(
                    "all {} connections stayed busy for {}s",
                    self.size,
                    POOL_WAIT.as_secs()
                )));
            }
            state = self
                .returned
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// A new connection. Connecting needs a reactor (sockets, timers), so it runs on the
    /// store's runtime, which then drives the connection for as long as it lives.
    fn connect(&self) -> Result<Client, ControlError> {
        let (config, tls) = (self.config.clone(), self.tls.clone());
        let connecting = self.runtime().spawn(async move {
            let (client, connection) = config.connect(tls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "control database connection lost");
                }
            });
            client.batch_execute(SESSION_LIMITS).await?;
            Ok::<_, tokio_postgres::Error>(client)
        });
        wait(connecting)
            .map_err(|e| ControlError::Unavailable(e.to_string()))?
            .map_err(|e| ControlError::Unavailable(e.to_string()))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A connection lent out; it goes back to the pool when dropped (or is counted out if
/// the server closed it).
pub struct Pooled<'a> {
    pool: &'a Pool,
    client: Option<Client>,
}

impl Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let mut state = lock(&self.pool.state);
        if client.is_closed() {
            state.open -= 1;
        } else {
            state.idle.push(client);
        }
        drop(state);
        self.pool.returned.notify_one();
    }
}
