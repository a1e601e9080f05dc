//! `cairn stats [SNAPSHOT...]`: sizes over snapshots, in restic's counting
//! modes; the default mode also shows what the data costs in the repository
//! (unique data, dedup ratio, compression ratio).

use super::select::select;
use crate::cli::{GlobalOptions, SnapshotFilterArgs};
use crate::error::Result;
use crate::output::{bytes, json_line};
use cairn_engine::stats::{Mode, StatsCollector};
use clap::Args;
use serde_json::{json, Map, Value};

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Snapshots to count (default: all that pass the filters)
    #[arg(value_name = "SNAPSHOT")]
    pub ids: Vec<String>,
    /// restore-size, files-by-contents, raw-data or blobs-per-file
    #[arg(long, default_value = "restore-size")]
    pub mode: String,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

pub fn run(g: &GlobalOptions, a: StatsArgs) -> Result<i32> {
    let mode = Mode::parse(&a.mode)?;
    let repo = crate::repo::open_with_index(g)?;
    let snaps = select(&repo, &a.ids, &super::snapshot_filter(&a.filter))?;
    let mut c = StatsCollector::new(&repo, mode);
    for (_, s) in &snaps {
        c.add_snapshot(s.tree)?;
    }
    let st = c.finish()?;
    if g.json {
        // restic's field names; zero fields left out as restic's omitempty does.
        let mut m = Map::new();
        m.insert("total_size".into(), json!(st.total_size));
        let mut put = |k: &str, v: Value, zero: bool| {
            if !zero {
                m.insert(k.into(), v);
            }
        };
        put(
            "total_uncompressed_size",
            json!(st.total_uncompressed_size),
            st.total_uncompressed_size == 0,
        );
        put(
            "compression_ratio",
            json!(st.compression_ratio),
            st.compression_ratio == 0.0,
        );
        put(
            "compression_progress",
            json!(st.compression_progress),
            st.compression_progress == 0.0,
        );
        put(
            "compression_space_saving",
            json!(st.compression_space_saving),
            st.compression_space_saving == 0.0,
        );
        put(
            "total_file_count",
            json!(st.total_file_count),
            st.total_file_count == 0,
        );
        put(
            "total_blob_count",
            json!(st.total_blob_count),
            st.total_blob_count == 0,
        );
        if mode == Mode::RestoreSize {
            put("raw_data_size", json!(st.raw_data_size), false);
            put("raw_data_stored_size", json!(st.raw_data_stored), false);
            put("dedup_ratio", json!(st.dedup_ratio), false);
        }
        m.insert("snapshots_count".into(), json!(st.snapshots_count));
        json_line(&Value::Object(m));
        return Ok(0);
    }
    let row = |label: &str, value: String| println!("{label:>24}:  {value}");
    println!("Stats in {} mode:", mode.as_str());
    row("Snapshots processed", st.snapshots_count.to_string());
    if st.total_blob_count > 0 {
        row("Total Blob Count", st.total_blob_count.to_string());
    }
    if st.total_file_count > 0 {
        row("Total File Count", st.total_file_count.to_string());
    }
    if st.total_uncompressed_size > 0 {
        row("Total Uncompressed Size", bytes(st.total_uncompressed_size));
    }
    row("Total Size", bytes(st.total_size));
    if mode == Mode::RestoreSize {
        row(
            "Unique Data Size",
            format!(
                "{} ({} stored)",
                bytes(st.raw_data_size),
                bytes(st.raw_data_stored)
            ),
        );
        row("Deduplication Ratio", format!("{:.2}x", st.dedup_ratio));
    }
    if st.compression_progress > 0.0 {
        row(
            "Compression Progress",
            format!("{:.2}%", st.compression_progress),
        );
    }
    if st.compression_ratio > 0.0 {
        row("Compression Ratio", format!("{:.2}x", st.compression_ratio));
    }
    if st.compression_space_saving > 0.0 {
        row(
            "Compression Space Saving",
            format!("{:.2}%", st.compression_space_saving),
        );
    }
    Ok(0)
}
