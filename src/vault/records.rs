//! A vault's structured records (clients, jobs, invoices...): the index's record
//! operations with their audit events, appended inside each record's transaction.

use super::index::{Record, SearchHit, records::RecordWrite};
use super::path::{CollectionName, RecordId};
use super::{Caller, Vault, VaultError};
use crate::audit::AuditAction;
use crate::vault::index::IndexError;

fn record_error(e: IndexError) -> VaultError {
    match e {
        IndexError::RecordNotFound => VaultError::NotFound,
        IndexError::RecordExists => VaultError::AlreadyExists,
        IndexError::VersionMismatch { current } => VaultError::VersionMismatch { current },
        other => other.into(),
    }
}

impl Vault {
    pub fn record(&self, collection: &CollectionName, id: &RecordId) -> Result<Record, VaultError> {
        self.index()
            .record(collection, id)?
            .ok_or(VaultError::NotFound)
    }

    pub fn create_record(
        &self,
        caller: &Caller,
        collection: &CollectionName,
        id: Option<RecordId>,
        body: &serde_json::Value,
    ) -> Result<Record, VaultError> {
        let id = id.unwrap_or_else(RecordId::generate);
        let event = self.event(
            caller,
            AuditAction::RecordCreate,
            &format!("{collection}/{id}"),
        );
        let (actor, now) = (caller.actor.to_string(), self.now());
        let write = RecordWrite {
            collection,
            id: &id,
            actor: &actor,
            now: &now,
        };
        // Checked under the index lock the change commits under: a freeze (or a move's
        // copy, which takes this lock) cannot fall between the check and the commit.
        let mut index = self.index();
        self.check_not_frozen()?;
        index
            .insert_record(write, body, &mut || self.audit.append(&event).map(|_| ()))
            .map_err(record_error)
    }

    pub fn replace_record(
        &self,
        caller: &Caller,
        collection: &CollectionName,
        id: &RecordId,
        body: &serde_json::Value,
        expected_version: Option<i64>,
    ) -> Result<Record, VaultError> {
        let (actor, now) = (caller.actor.to_string(), self.now());
        let write = RecordWrite {
            collection,
            id,
            actor: &actor,
            now: &now,
        };
        let mut index = self.index();
        self.check_not_frozen()?;
        // The version the event names is the one this replace creates.
        let next = index.record(collection, id)?.map_or(1, |r| r.version + 1);
        let event = self
            .event(
                caller,
                AuditAction::RecordUpdate,
                &format!("{collection}/{id}"),
            )
            .detail(serde_json::json!({ "version": next }));
        index
            .replace_record(write, body, expected_version, &mut || {
                self.audit.append(&event).map(|_| ())
            })
            .map_err(record_error)
    }

    pub fn delete_record(
        &self,
        caller: &Caller,
        collection: &CollectionName,
        id: &RecordId,
        expected_version: Option<i64>,
    ) -> Result<(), VaultError> {
        let event = self.event(
            caller,
            AuditAction::RecordDelete,
            &format!("{collection}/{id}"),
        );
        let mut index = self.index();
        self.check_not_frozen()?;
        index
            .delete_record(collection, id, expected_version, &mut || {
                self.audit.append(&event).map(|_| ())
            })
            .map_err(record_error)
    }

    pub fn list_records(
        &self,
        collection: &CollectionName,
        filters: &[(String, serde_json::Value)],
        before: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<Record>, VaultError> {
        Ok(self
            .index()
            .list_records(collection, filters, before, limit)?)
    }

    pub fn all_records(&self) -> Result<Vec<Record>, VaultError> {
        Ok(self.index().all_records()?)
    }

    pub fn collections(&self) -> Result<Vec<(String, u64)>, VaultError> {
        Ok(self.index().collections()?)
    }

    pub fn search(&self, text: &str, limit: u32) -> Result<Vec<SearchHit>, VaultError> {
        Ok(self.index().search(text, limit)?)
    }
}
