//! The SQLite side of the customer's rights: correcting one's profile, reading one's
//! login history (`RightsTx`).

use rusqlite::params;

use super::{Tx, is_unique_violation, login_from_row};
use crate::control::ControlError;
use crate::control::model::LoginEvent;
use crate::control::store::RightsTx;
use crate::names::{Email, UserId};

impl RightsTx for Tx<'_> {
    fn update_profile(
        &self,
        id: UserId,
        name: Option<&str>,
        email: Option<&Email>,
    ) -> Result<(), ControlError> {
        self.conn
            .execute(
                "UPDATE users SET name = COALESCE(?2, name), email = COALESCE(?3, email)
                 WHERE id = ?1",
                params![id.to_string(), name, email.map(Email::as_str)],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    ControlError::EmailTaken
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    fn user_logins(&self, id: UserId, limit: u32) -> Result<Vec<LoginEvent>, ControlError> {
        self.all(
            "SELECT l.user_id, u.email, l.at, l.ip, l.success FROM login_events l
             JOIN users u ON u.id = l.user_id
             WHERE l.user_id = ?1 ORDER BY l.id DESC LIMIT ?2",
            params![id.to_string(), limit],
            login_from_row,
        )
    }
}
