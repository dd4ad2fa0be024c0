//! Figures for the record, not a gate (the machine is shared and noisy): how soon a
//! 10,000-entry folder shows its first rows, how long until all of it is loaded, and a
//! re-sort. Ignored by default because filling the folder takes a while; run with
//! `cargo test --test it -- --ignored web_ui::measure --nocapture`.

use super::{Rig, TENANT};
use crate::support::zipgen::{RawEntry, build};

const ENTRIES: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: cargo test --test it -- --ignored web_ui::measure --nocapture"]
async fn a_ten_thousand_entry_folder_shows_its_first_rows_at_once() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let archive = local.path().join("big.zip");
    let entries: Vec<RawEntry> = (0..ENTRIES)
        .map(|i| RawEntry::file(&format!("big-folder/file-{i:05}.txt"), b"x"))
        .collect();
    std::fs::write(&archive, build(&entries)).unwrap();

    rig.sign_in("olivia@greenleaf.example").await;
    rig.open(&format!("#/t/{TENANT}/data")).await;
    rig.pick(0, &archive.display().to_string()).await;
    rig.click_labelled("Import").await;
    rig.until_within(
        "the import of 10,000 files",
        "document.body.innerText.includes('Imported 10,000 files')",
        std::time::Duration::from_secs(600),
    )
    .await;

    // Times from the page's own clock: the change of address, the first row, all loaded.
    rig.js(&format!(
        "window.__times = {{ start: performance.now() }};
         const seen = new MutationObserver(() => {{
           if (!window.__times.first && document.querySelector('table.files tbody tr'))
             window.__times.first = performance.now();
           const status = document.getElementById('listing-status');
           if (!window.__times.all && status && status.textContent === '10,000 items')
             window.__times.all = performance.now();
         }});
         seen.observe(document.body, {{ childList: true, subtree: true, characterData: true }});
         location.hash = '#/t/{TENANT}/files/big-folder';
         return true;"
    ))
    .await;
    rig.until("every entry loaded", "window.__times.all").await;
    let times = rig.js("return window.__times;").await;
    let first = times["first"].as_f64().unwrap() - times["start"].as_f64().unwrap();
    let all = times["all"].as_f64().unwrap() - times["start"].as_f64().unwrap();
    let rows = rig
        .js("return document.querySelectorAll('table.files tbody tr').length;")
        .await;
    assert_eq!(rows, 100, "one page of rows is drawn, not ten thousand");
    rig.until_text("1–100 of 10,000").await;

    let sort = rig
        .js("const t = performance.now();
             document.querySelectorAll('table.files th button.sort')[1].click();
             return performance.now() - t;")
        .await;
    eprintln!(
        "10,000-entry folder: first rows after {first:.0} ms, all entries after {all:.0} ms, \
         re-sort by size {:.0} ms",
        sort.as_f64().unwrap()
    );
}
