//! A raw ZIP writer for hostile test archives: it writes exactly the bytes asked for,
//! including what well-behaved writers refuse (duplicate names, a local name that differs
//! from the central one, entries sharing data, encrypted flags, special-file modes, lying
//! sizes). Entries are stored (method 0) unless `deflate` is set.

use std::io::Write;

#[derive(Clone)]
pub struct RawEntry {
    pub name: String,
    /// Name in the local header, when it should differ from the central directory's.
    pub local_name: Option<String>,
    pub data: Vec<u8>,
    pub deflate: bool,
    pub flags: u16,
    /// Unix mode in the high 16 bits of the external attributes (0: none).
    pub unix_mode: u32,
    /// Point this entry's central record at another entry's local header.
    pub share_data_with: Option<usize>,
    /// Uncompressed size to claim (default: the real one).
    pub claimed_size: Option<u32>,
}

impl RawEntry {
    pub fn file(name: &str, data: &[u8]) -> RawEntry {
        RawEntry {
            name: name.to_owned(),
            local_name: None,
            data: data.to_vec(),
            deflate: false,
            flags: 0x0800, // UTF-8 names
            unix_mode: 0,
            share_data_with: None,
            claimed_size: None,
        }
    }
}

pub fn build(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let mut offsets = Vec::new();
    let mut metas = Vec::new();
    for e in entries {
        let payload = if e.deflate {
            let mut enc =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(&e.data).unwrap();
            enc.finish().unwrap()
        } else {
            e.data.clone()
        };
        let crc = crc32fast::hash(&e.data);
        let usize_ = e.claimed_size.unwrap_or(e.data.len() as u32);
        let method: u16 = if e.deflate { 8 } else { 0 };
        let local_name = e.local_name.as_deref().unwrap_or(&e.name);
        offsets.push(out.len() as u32);
        out.extend_from_slice(&0x04034b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0x5a21u16.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&usize_.to_le_bytes());
        out.extend_from_slice(&(local_name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(local_name.as_bytes());
        out.extend_from_slice(&payload);
        metas.push((crc, payload.len() as u32, usize_, method));
    }
    for (i, e) in entries.iter().enumerate() {
        let source = e.share_data_with.unwrap_or(i);
        let (crc, csize, usize_, method) = metas[source];
        let usize_ = e.claimed_size.unwrap_or(usize_);
        central.extend_from_slice(&0x02014b50u32.to_le_bytes());
        central.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes()); // made by Unix
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&e.flags.to_le_bytes());
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x5a21u16.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&csize.to_le_bytes());
        central.extend_from_slice(&usize_.to_le_bytes());
        central.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&(e.unix_mode << 16).to_le_bytes());
        central.extend_from_slice(&offsets[source].to_le_bytes());
        central.extend_from_slice(e.name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x06054b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}
