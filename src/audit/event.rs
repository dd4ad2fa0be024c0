//! What an audit event says: the closed set of actions, who acted, and the event to
//! append. Pure data: no I/O.

use serde::{Deserialize, Serialize};

use crate::names::{TenantId, UserId};

macro_rules! actions {
    ($($variant:ident => $name:literal,)*) => {
        /// What happened. A closed set: the names are stable and documented in the layout
        /// spec, because auditors and the export's `audit.jsonl` rely on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction { $($variant,)* }

        impl AuditAction {
            pub const ALL: &[AuditAction] = &[$(AuditAction::$variant,)*];
            pub fn as_str(&self) -> &'static str {
                match self { $(AuditAction::$variant => $name,)* }
            }
            pub fn parse(name: &str) -> Option<AuditAction> {
                match name { $($name => Some(AuditAction::$variant),)* _ => None }
            }
        }

        /// In the API description: one of the names.
        impl utoipa::PartialSchema for AuditAction {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($name,)*]))
                    .description(Some("An audit action (the closed set of the layout spec)."))
                    .into()
            }
        }
        impl utoipa::ToSchema for AuditAction {}
    };
}

actions! {
    DataRootInit => "data_root.init",
    TenantCreate => "tenant.create",
    TenantUpdate => "tenant.update",
    TenantStateChange => "tenant.state_change",
    TenantLegalHold => "tenant.legal_hold",
    TenantPurge => "tenant.purge",
    TenantPlace => "tenant.place",
    MaintenancePrune => "maintenance.prune",
    BackupCreate => "backup.create",
    BackupRemove => "backup.remove",
    DataRootRestore => "data_root.restore",
    AuditPrune => "audit.prune",
    UsageAiReport => "usage.ai_report",
    UserCreate => "user.create",
    UserUpdate => "user.update",
    UserDelete => "user.delete",
    PasswordChange => "user.password_change",
    PasswordUpgrade => "user.password_upgrade",
    MemberAdd => "member.add",
    MemberRoleChange => "member.role_change",
    MemberRemove => "member.remove",
    FileWrite => "file.write",
    FileRead => "file.read",
    FileMove => "file.move",
    FileProperties => "file.properties",
    FileDelete => "file.delete",
    FileRestore => "file.restore",
    FilePurge => "file.purge",
    DirCreate => "dir.create",
    RecordCreate => "record.create",
    RecordUpdate => "record.update",
    RecordDelete => "record.delete",
    VaultReindex => "vault.reindex",
    VaultReconcile => "vault.reconcile",
    Login => "auth.login",
    LoginFailed => "auth.login_failed",
    Logout => "auth.logout",
    SessionRevoke => "auth.session_revoke",
    TokenCreate => "token.create",
    TokenRevoke => "token.revoke",
    AccessDenied => "access.denied",
    ExportStart => "export.start",
    ExportFinish => "export.finish",
    Import => "vault.import",
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditAction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        AuditAction::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown audit action {name:?}")))
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user.
    User(UserId),
    /// A program using an API token (by token id).
    Token(String),
    /// An operator at the command line (with the OS user name when known).
    Operator(Option<String>),
    /// Coffer itself (lifecycle workers, reconcile).
    System,
    /// Nobody authenticated (failed logins).
    Anonymous,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::Token(id) => write!(f, "token:{id}"),
            Actor::Operator(Some(name)) => write!(f, "operator:cli:{name}"),
            Actor::Operator(None) => write!(f, "operator:cli"),
            Actor::System => f.write_str("system"),
            Actor::Anonymous => f.write_str("anonymous"),
        }
    }
}

impl Actor {
    /// The inverse of `Display`.
    pub fn parse(text: &str) -> Option<Actor> {
        Some(match text {
            "system" => Actor::System,
            "anonymous" => Actor::Anonymous,
            "operator:cli" => Actor::Operator(None),
            _ => {
                if let Some(name) = text.strip_prefix("operator:cli:") {
                    Actor::Operator(Some(name.to_owned()))
                } else if let Some(id) = text.strip_prefix("user:") {
                    Actor::User(UserId::parse(id).ok()?)
                } else {
                    Actor::Token(text.strip_prefix("token:")?.to_owned())
                }
            }
        })
    }
}

impl Serialize for Actor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Actor::parse(&text).ok_or_else(|| serde::de::Error::custom("unknown actor"))
    }
}

/// Who is acting and from where: what every mutation passes down so that its audit
/// event names the right actor. The auth layer (or the operator CLI) builds it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub ip: Option<String>,
}

impl Caller {
    pub fn new(actor: Actor) -> Self {
        Caller { actor, ip: None }
    }
    pub fn system() -> Self {
        Caller::new(Actor::System)
    }
    pub fn with_ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }
    /// An event of this caller, with its actor and IP filled in.
    pub fn event(&self, action: AuditAction) -> AuditEvent {
        AuditEvent::new(action, self.actor.clone()).ip(self.ip.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Denied,
    Failure,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

/// One event to append. It carries its own id from the moment it is made, so an event
/// recorded ahead (with a vault write, to be replayed after a crash) is appended at most
/// once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub tenant: Option<TenantId>,
    pub actor: Actor,
    pub ip: Option<String>,
    pub action: AuditAction,
    /// What was acted on (a path, a record, a user id): redactable, chained by its hash.
    pub target: Option<String>,
    /// Where it went (a move's new path): redactable, chained by its hash.
    pub destination: Option<String>,
    pub outcome: Outcome,
    /// A small JSON object of non-content facts (sizes, roles, counts). Never a name a
    /// tenant chose: those go in `target` or `destination`.
    pub detail: Option<serde_json::Value>,
}

impl AuditEvent {
    pub fn new(action: AuditAction, actor: Actor) -> Self {
        AuditEvent {
            id: uuid::Uuid::now_v7().simple().to_string(),
            tenant: None,
            actor,
            ip: None,
            action,
            target: None,
            destination: None,
            outcome: Outcome::Success,
            detail: None,
        }
    }
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
    pub fn destination(mut self, destination: impl Into<String>) -> Self {
        self.destination = Some(destination.into());
        self
    }
    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
        }
    }

    #[test]
    fn actors_round_trip() {
        for a in [
            Actor::User(UserId::generate()),
            Actor::Token("abc".into()),
            Actor::Operator(Some("ops".into())),
            Actor::Operator(None),
            Actor::System,
            Actor::Anonymous,
        ] {
            assert_eq!(Actor::parse(&a.to_string()), Some(a));
        }
        let e = AuditEvent::new(AuditAction::FileMove, Actor::System)
            .target("a")
            .destination("b");
        let back: AuditEvent = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!((back.id, back.destination), (e.id, e.destination));
    }
}
