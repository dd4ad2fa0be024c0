//! Checking an archive against its manifest: every listed entry present with its size
//! and SHA-256, nothing unlisted, no duplicates. Needs nothing but the archive.

use std::io::{self, Read};

use serde::Serialize;

use super::{ExportError, FORMAT, FORMAT_VERSION, MANIFEST_NAME, Manifest};
use crate::vault::sha256_of;

/// What `verify` found.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub entries: usize,
    pub bytes: u64,
    pub problems: Vec<String>,
}

/// Checks an archive against its manifest: every listed entry present with its size and
/// SHA-256, nothing unlisted, no duplicates.
pub fn verify<R: Read + io::Seek>(reader: R) -> Result<VerifyReport, ExportError> {
    let mut archive = zip::ZipArchive::new(reader)?;
    if archive.has_duplicate_names() {
        return Err(ExportError::NotAnExport(
            "the archive has duplicate entry names".into(),
        ));
    }
    let manifest: Manifest = {
        let mut file = archive
            .by_name(MANIFEST_NAME)
            .map_err(|_| ExportError::NotAnExport("no manifest.json".into()))?;
        let mut text = Vec::new();
        file.by_ref()
            .take(256 * 1024 * 1024)
            .read_to_end(&mut text)?;
        serde_json::from_slice(&text)
            .map_err(|e| ExportError::NotAnExport(format!("manifest.json: {e}")))?
    };
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        return Err(ExportError::NotAnExport(format!(
            "unsupported format {} v{}",
            manifest.format, manifest.format_version
        )));
    }
    let mut report = VerifyReport {
        entries: manifest.entries.len(),
        ..Default::default()
    };
    let listed: std::collections::HashSet<&str> =
        manifest.entries.iter().map(|e| e.path.as_str()).collect();
    for name in archive.file_names() {
        let name = name?;
        if name != MANIFEST_NAME && !listed.contains(name.as_ref()) {
            report
                .problems
                .push(format!("{name}: in the archive but not in the manifest"));
        }
    }
    for e in &manifest.entries {
        let mut file = match archive.by_name(&e.path) {
            Ok(f) => f,
            Err(_) => {
                report
                    .problems
                    .push(format!("{}: listed in the manifest but missing", e.path));
                continue;
            }
        };
        if e.kind == "dir" {
            if !file.is_dir() {
                report
                    .problems
                    .push(format!("{}: listed as a directory", e.path));
            }
            continue;
        }
        let (sha256, size) = sha256_of(&mut file)?;
        report.bytes += size;
        if Some(size) != e.size {
            report.problems.push(format!(
                "{}: {size} bytes, manifest says {:?}",
                e.path, e.size
            ));
        }
        if Some(sha256) != e.sha256 {
            report
                .problems
                .push(format!("{}: SHA-256 does not match the manifest", e.path));
        }
    }
    Ok(report)
}
