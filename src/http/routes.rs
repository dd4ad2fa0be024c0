//! `ROUTES`: the one table of every route of the API, with the permission it needs. The
//! router is built from it (each route behind an `authorize` layer made from its entry),
//! and the API description is generated from it and from each handler's own
//! `#[utoipa::path]`, so a route cannot exist without a permission and the document
//! cannot drift from what is served (`openapi::reconcile` refuses any difference).

use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post, put};

use super::{
    AppState, account, admin, files, lifecycle, nodes, ops, portability, records, rights,
    telemetry, tenants, ui,
};
use crate::auth::permission::{Permission, TenantPermission as TP};

/// One route: method, path, the permission it needs, and what it does.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub permission: Permission,
    pub summary: &'static str,
    /// The handler's name (`files_upload`): the operation id in the API description.
    pub operation_id: &'static str,
}

macro_rules! routes {
    ($($method:ident $path:literal, $perm:expr, $summary:literal => $module:ident :: $handler:ident;)*) => {
        /// Every route of the API with its permission. `GET` routes also answer `HEAD`.
        pub const ROUTES: &[Route] = &[$(Route {
            method: Method::$method,
            path: $path,
            permission: $perm,
            summary: $summary,
            operation_id: concat!(stringify!($module), "_", stringify!($handler)),
        },)*];

        /// The handlers of `ROUTES`, in the same order.
        pub(super) fn handlers() -> Vec<MethodRouter<AppState>> {
            vec![$(routes!(@method $method)($module::$handler),)*]
        }

        /// What each handler's `#[utoipa::path]` says of its parameters, bodies and
        /// responses; `openapi` joins it to `ROUTES` (paths, permissions, security).
        #[derive(utoipa::OpenApi)]
        // Schemas only parameters name (utoipa collects those of bodies and responses).
        #[openapi(paths($($module::$handler),*), components(schemas(crate::audit::AuditAction)))]
        pub(super) struct Described;
    };
    (@method GET) => { get };
    (@method PUT) => { put };
    (@method POST) => { post };
    (@method PATCH) => { patch };
    (@method DELETE) => { delete };
}

use Permission::{Authenticated, Metrics, Node, Platform, Public, Tenant};

/// A WebDAV route: a method on a tenant's files under `/dav/{tenant}/` and the permission
/// it needs. WebDAV's methods (PROPFIND, MKCOL, ...) are not axum's, so each path of
/// `DAV_PATHS` is one route whose guard (`dav::guard`) takes the permission of the
/// request's method from here; any other method is 405. They are not in the OpenAPI
/// document, which describes the JSON API (README, "Mount your vault").
#[derive(Debug, Clone)]
pub struct DavRoute {
    pub method: &'static str,
    pub permission: Permission,
    pub summary: &'static str,
}

/// The paths WebDAV answers on: a tenant's root and everything below it.
pub const DAV_PATHS: [&str; 3] = ["/dav/{tenant}", "/dav/{tenant}/", "/dav/{tenant}/{*path}"];

macro_rules! dav_routes {
    ($($method:literal, $perm:ident, $summary:literal;)*) => {
        /// Every WebDAV method with its permission: reading needs what reading files
        /// through the API needs, any change what writing files needs.
        pub const DAV_ROUTES: &[DavRoute] = &[$(DavRoute {
            method: $method,
            permission: Tenant(TP::$perm),
            summary: $summary,
        },)*];
    };
}

dav_routes! {
    "OPTIONS", FilesRead, "What the server supports (DAV classes 1 and 2)";
    "PROPFIND", FilesRead, "Properties of a file or folder, and of a folder's entries (Depth 0 or 1)";
    "GET", FilesRead, "Download a file (Range)";
    "HEAD", FilesRead, "A file's headers";
    "PUT", FilesWrite, "Upload a file (streamed, durable before the answer)";
    "DELETE", FilesWrite, "Move a file or folder to the trash";
    "MKCOL", FilesWrite, "Create a folder";
    "COPY", FilesWrite, "Copy within the vault (Destination)";
    "MOVE", FilesWrite, "Move or rename within the vault (Destination)";
    "PROPPATCH", FilesWrite, "Set properties";
    "LOCK", FilesWrite, "Lock a file or folder (timeouts bounded and enforced)";
    "UNLOCK", FilesWrite, "Release a lock";
}

routes! {
    GET "/", Public, "The web UI (signs in, then works on files, records, people and more through this API)" => ui::index;
    GET "/ui/{*file}", Public, "The web UI's files, by build version (cached for a year)" => ui::file;
    GET "/healthz", Public, "Liveness: the process is up" => ops::healthz;
    GET "/readyz", Public, "Readiness: databases answer" => ops::readyz;
    GET "/metrics", Metrics, "Prometheus metrics (aggregate counts only): on the metrics address, or with the metrics token" => telemetry::metrics;
    GET "/api/v1/openapi.json", Public, "This API's OpenAPI 3.1 description" => ops::openapi;
    GET "/api/v1/docs", Public, "The API reference (redirects to /api/v1/docs/)" => ops::docs;
    GET "/api/v1/docs/", Public, "The API reference: every operation, parameter and body, with a try-it form" => ops::docs_index;
    GET "/api/v1/docs/{*file}", Public, "The API reference's files" => ops::docs_file;

    POST "/api/v1/auth/signup", Public, "Create a user and a tenant they own; signs in" => account::signup;
    POST "/api/v1/auth/login", Public, "Sign in with e-mail and password; sets the session cookie" => account::login;
    POST "/api/v1/auth/logout", Authenticated, "End this session (or revoke the API token in use)" => account::logout;
    GET "/api/v1/auth/me", Authenticated, "The signed-in user, memberships and CSRF token" => account::me;
    PATCH "/api/v1/auth/me", Authenticated, "Correct your name or e-mail address (session only)" => rights::update_me;
    GET "/api/v1/auth/me/data", Authenticated, "Everything held about you: profile, memberships, sessions, tokens, logins, account events" => rights::my_data;
    GET "/api/v1/auth/me/events", Authenticated, "Your account's audit events (filters: since, until, action, actor)" => rights::my_events;
    GET "/api/v1/auth/sessions", Authenticated, "Your sessions, with IP and user agent" => rights::sessions;
    DELETE "/api/v1/auth/sessions/{id}", Authenticated, "Revoke one of your sessions (session only)" => rights::revoke_session;
    POST "/api/v1/auth/me/delete", Authenticated, "Delete your own account (session only)" => account::delete_me;
    POST "/api/v1/auth/password", Authenticated, "Change password (ends every session; session only)" => account::change_password;
    POST "/api/v1/auth/password-reset", Public, "Ask for a password-reset token" => account::request_reset;
    POST "/api/v1/auth/password-reset/confirm", Public, "Set a new password with a reset token" => account::confirm_reset;
    GET "/api/v1/auth/tokens", Authenticated, "Your API tokens" => account::list_tokens;
    POST "/api/v1/auth/tokens", Authenticated, "Create an API token (secret shown once; session only)" => account::create_token;
    DELETE "/api/v1/auth/tokens/{id}", Authenticated, "Revoke an API token" => account::revoke_token;

    GET "/api/v1/admin/tenants", Platform, "All tenants (operators)" => admin::list_tenants;
    POST "/api/v1/admin/tenants", Platform, "Create a tenant (operators)" => admin::create_tenant;
    GET "/api/v1/admin/users", Platform, "All users (operators)" => admin::list_users;
    GET "/api/v1/admin/audit", Platform, "Every audit event (filters: since, until, action, actor)" => rights::all_events;
    GET "/api/v1/admin/audit/isolation", Platform, "The isolation report over the whole data root (deep=true rehashes every file; operators)" => admin::isolation;
    POST "/api/v1/admin/tenants/{tenant}/lifecycle", Platform, "Any tenant's lifecycle, legal hold, or deletion with a signed receipt (operators)" => lifecycle::admin_change;
    GET "/api/v1/admin/tenants/{tenant}/usage", Platform, "Any tenant's usage: counters, metered calls and AI tokens, logins (operators)" => tenants::admin_usage;
    GET "/api/v1/admin/tenants/{tenant}/receipt", Platform, "A purged tenant's signed deletion receipt, by tenant id (operators)" => lifecycle::receipt;

    GET "/api/v1/nodes/moves/{tenant}", Node, "A tenant's copy, for the node taking it (`coffer tenant move`): live with a live token, else whole and fenced" => nodes::move_copy;
    POST "/api/v1/nodes/moves/{tenant}", Node, "A fenced tenant's copy without the files the taking node already holds from its live copy" => nodes::move_copy_rest;

    GET "/api/v1/tenants/{tenant}", Tenant(TP::TenantRead), "A tenant and your role in it" => tenants::show;
    POST "/api/v1/tenants/{tenant}/lifecycle", Tenant(TP::Lifecycle), "Restrict, unrestrict, cancel or reactivate the tenant (owner, in person)" => lifecycle::change;
    GET "/api/v1/tenants/{tenant}/members", Tenant(TP::MembersRead), "Members and roles" => tenants::members;
    POST "/api/v1/tenants/{tenant}/members", Tenant(TP::MembersManage), "Add a member" => tenants::add_member;
    PATCH "/api/v1/tenants/{tenant}/members/{user}", Tenant(TP::MembersManage), "Change a member's role" => tenants::change_member;
    DELETE "/api/v1/tenants/{tenant}/members/{user}", Tenant(TP::MembersManage), "Remove a member" => tenants::remove_member;
    GET "/api/v1/tenants/{tenant}/audit", Tenant(TP::AuditRead), "The tenant's audit events" => tenants::audit;
    GET "/api/v1/tenants/{tenant}/usage", Tenant(TP::UsageRead), "Usage: stored bytes, files, records, metered API calls and AI tokens, logins" => tenants::usage;
    POST "/api/v1/tenants/{tenant}/usage/ai", Tenant(TP::UsageReport), "Report AI tokens consumed (a token with the ai-usage scope; refused while restricted)" => tenants::report_ai_usage;
    GET "/api/v1/tenants/{tenant}/search", Tenant(TP::Search), "Full-text search over records and file names" => tenants::search;

    GET "/api/v1/tenants/{tenant}/tree", Tenant(TP::FilesRead), "List the root directory" => files::list_root;
    GET "/api/v1/tenants/{tenant}/tree/{*path}", Tenant(TP::FilesRead), "List a directory" => files::list_dir;
    GET "/api/v1/tenants/{tenant}/files/{*path}", Tenant(TP::FilesRead), "Download a file (Range, ETag)" => files::download;
    PUT "/api/v1/tenants/{tenant}/files/{*path}", Tenant(TP::FilesWrite), "Upload a file (streamed; If-Match, If-None-Match)" => files::upload;
    DELETE "/api/v1/tenants/{tenant}/files/{*path}", Tenant(TP::FilesWrite), "Move a file or directory to the trash" => files::remove;
    POST "/api/v1/tenants/{tenant}/dirs", Tenant(TP::FilesWrite), "Create a directory" => files::mkdir;
    POST "/api/v1/tenants/{tenant}/move", Tenant(TP::FilesWrite), "Move or rename a file or directory" => files::rename;
    GET "/api/v1/tenants/{tenant}/trash", Tenant(TP::FilesRead), "Items in the trash" => files::trash_list;
    POST "/api/v1/tenants/{tenant}/trash/{id}/restore", Tenant(TP::FilesWrite), "Restore a trash item" => files::trash_restore;
    DELETE "/api/v1/tenants/{tenant}/trash/{id}", Tenant(TP::TrashPurge), "Delete a trash item for good" => files::trash_purge;

    GET "/api/v1/tenants/{tenant}/export", Tenant(TP::Export), "The whole vault as one ZIP (streamed; Range resume with If-Range)" => portability::export;
    POST "/api/v1/tenants/{tenant}/import", Tenant(TP::Import), "Restore a ZIP archive into the vault (?conflict=fail|skip)" => portability::import;

    GET "/api/v1/tenants/{tenant}/records", Tenant(TP::RecordsRead), "Collections with record counts" => records::collections;
    GET "/api/v1/tenants/{tenant}/records/{collection}", Tenant(TP::RecordsRead), "List records (newest first, filters)" => records::list;
    POST "/api/v1/tenants/{tenant}/records/{collection}", Tenant(TP::RecordsWrite), "Create a record" => records::create;
    GET "/api/v1/tenants/{tenant}/records/{collection}/{id}", Tenant(TP::RecordsRead), "Get a record" => records::get_one;
    PUT "/api/v1/tenants/{tenant}/records/{collection}/{id}", Tenant(TP::RecordsWrite), "Replace a record (If-Match required)" => records::replace;
    PATCH "/api/v1/tenants/{tenant}/records/{collection}/{id}", Tenant(TP::RecordsWrite), "JSON merge-patch a record" => records::merge_patch;
    DELETE "/api/v1/tenants/{tenant}/records/{collection}/{id}", Tenant(TP::RecordsWrite), "Delete a record" => records::remove;
}
