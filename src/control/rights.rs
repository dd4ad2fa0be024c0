//! The customer's rights in the control plane (P9, P11): correcting one's own profile
//! (audited as `user.update`, naming the fields changed, never their values) and reading
//! one's own login history.

use super::model::{LoginEvent, User};
use super::{ControlError, ControlPlane};
use crate::audit::{AuditAction, Caller};
use crate::names::{Email, UserId};

impl ControlPlane {
    /// Corrects a user's name and/or e-mail address. `EmailTaken` if the address belongs
    /// to another account.
    pub fn update_profile(
        &self,
        caller: &Caller,
        user: UserId,
        name: Option<&str>,
        email: Option<&Email>,
    ) -> Result<User, ControlError> {
        self.write(|tx, _| {
            let before = tx.user(user)?.ok_or(ControlError::NotFound)?;
            tx.update_profile(user, name, email)?;
            let after = tx.user(user)?.ok_or(ControlError::NotFound)?;
            let mut fields = Vec::new();
            if before.name != after.name {
                fields.push("name");
            }
            if before.email != after.email {
                fields.push("email");
            }
            let events = if fields.is_empty() {
                Vec::new()
            } else {
                vec![
                    caller
                        .event(AuditAction::UserUpdate)
                        .target(user.to_string())
                        .detail(serde_json::json!({ "fields": fields })),
                ]
            };
            Ok((after, events))
        })
    }

    /// The user's own logins (time, IP, outcome), newest first.
    pub fn user_logins(&self, user: UserId, limit: u32) -> Result<Vec<LoginEvent>, ControlError> {
        self.read(|tx| tx.user_logins(user, limit))
    }
}
