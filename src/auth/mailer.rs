//! Delivering account messages (password resets). Coffer never sends mail by itself
//! (P18: no third-party calls): the default `OutboxMailer` writes each message as a file
//! in the data root's `outbox/` for an operator or a relay to deliver.

use std::io::{self, Write};
use std::sync::Arc;

use cap_std::fs::{DirBuilder, DirBuilderExt, OpenOptions, OpenOptionsExt};

use crate::db;
use crate::names::Email;
use crate::vault::layout::{DataRoot, DataRootPath};

pub trait Mailer: Send + Sync {
    fn send(&self, to: &Email, subject: &str, body: &str) -> io::Result<()>;
    /// Deletes messages to `to` not yet delivered (their account was deleted); returns
    /// how many.
    fn forget(&self, to: &Email) -> io::Result<usize>;
}

/// Writes messages to `<data-root>/outbox/<time>-<id>.eml` (mode 0600).
pub struct OutboxMailer {
    root: Arc<DataRoot>,
}

impl OutboxMailer {
    pub fn new(root: Arc<DataRoot>) -> Self {
        OutboxMailer { root }
    }
}

impl Mailer for OutboxMailer {
    fn send(&self, to: &Email, subject: &str, body: &str) -> io::Result<()> {
        let dir_name = DataRootPath::Outbox.path();
        let mut private = DirBuilder::new();
        private.mode(0o700);
        match self.root.dir().create_dir_with(&dir_name, &private) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let outbox = self.root.dir().open_dir(&dir_name)?;
        let stamp = db::now().replace([':', '.'], "-");
        let name = format!("{stamp}-{}.eml", uuid::Uuid::new_v4().simple());
        let mut file = outbox.open_with(
            &name,
            OpenOptions::new().write(true).create_new(true).mode(0o600),
        )?;
        // Header values come from parsed e-mail addresses and fixed subjects: no CR/LF.
        write!(
            file,
            "To: {to}\r\nSubject: {subject}\r\nDate: {}\r\n\r\n{body}",
            db::now()
        )?;
        file.sync_all()
    }

    fn forget(&self, to: &Email) -> io::Result<usize> {
        let Ok(outbox) = self.root.dir().open_dir(DataRootPath::Outbox.path()) else {
            return Ok(0); // no outbox yet: nothing was ever sent
        };
        let header = format!("To: {to}\r\n");
        let mut forgotten = 0;
        for entry in outbox.entries()? {
            let name = entry?.file_name();
            let Some(name) = name.to_str().filter(|n| n.ends_with(".eml")) else {
                continue;
            };
            let mut head = [0u8; 512];
            let n = io::Read::read(&mut outbox.open(name)?, &mut head)?;
            if head[..n].starts_with(header.as_bytes()) {
                outbox.remove_file(name)?;
                forgotten += 1;
            }
        }
        if forgotten > 0 {
            crate::vault::dir::sync_dir(&outbox)?;
        }
        Ok(forgotten)
    }
}
