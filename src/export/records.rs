//! The records of an export: one JSON-lines file per collection (the authoritative
//! form, read back by import) and a CSV view of the same records for spreadsheets,
//! defused against formula injection.

use serde::{Deserialize, Serialize};

use crate::vault::index::Record;

/// One line of `records/<collection>.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordLine {
    pub id: String,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub body: serde_json::Value,
}

impl From<&Record> for RecordLine {
    fn from(r: &Record) -> Self {
        RecordLine {
            id: r.id.clone(),
            version: r.version,
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
            created_by: r.created_by.clone(),
            updated_by: r.updated_by.clone(),
            body: r.body.clone(),
        }
    }
}

/// A CSV cell: quoted when needed, and defused against formula injection (a cell that a
/// spreadsheet would evaluate starts with a quote character instead).
fn csv_cell(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

pub(super) fn records_csv(records: &[Record]) -> String {
    let mut fields: Vec<String> = records
        .iter()
        .filter_map(|r| r.body.as_object())
        .flat_map(|o| o.keys().cloned())
        .collect();
    fields.sort();
    fields.dedup();
    let mut out = String::from("id,version,created_at,updated_at");
    for f in &fields {
        out.push(',');
        out.push_str(&csv_cell(f));
    }
    out.push_str("\r\n");
    for r in records {
        out.push_str(&format!(
            "{},{},{},{}",
            csv_cell(&r.id),
            r.version,
            r.created_at,
            r.updated_at
        ));
        for f in &fields {
            out.push(',');
            match r.body.get(f) {
                Some(serde_json::Value::String(s)) => out.push_str(&csv_cell(s)),
                Some(serde_json::Value::Null) | None => {}
                Some(other) => out.push_str(&csv_cell(&other.to_string())),
            }
        }
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_is_escaped_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "'-1");
    }
}
