//! `--prometheus`: counters per user, repository and object type, under
//! rest-server's metric names, in Prometheus' text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug)]
pub enum Op {
    Read,
    Write,
    Delete,
}

#[derive(Default, Clone, Copy)]
struct Counters {
    count: [u64; 3],
    bytes: [u64; 3],
}

#[derive(Default)]
pub struct Metrics {
    /// (user, repo, type) → counters
    counters: Mutex<BTreeMap<(String, String, &'static str), Counters>>,
}

const NAMES: [(&str, &str, &str); 3] = [
    (
        "rest_server_blob_read_total",
        "rest_server_blob_read_bytes_total",
        "read",
    ),
    (
        "rest_server_blob_write_total",
        "rest_server_blob_write_bytes_total",
        "written",
    ),
    (
        "rest_server_blob_delete_total",
        "rest_server_blob_delete_bytes_total",
        "deleted",
    ),
];

impl Metrics {
    pub fn record(&self, user: &str, repo: &str, kind: &'static str, op: Op, bytes: u64) {
        let mut c = self.counters.lock().unwrap();
        let e = c
            .entry((user.to_string(), repo.to_string(), kind))
            .or_default();
        e.count[op as usize] += 1;
        e.bytes[op as usize] += bytes;
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let c = self.counters.lock().unwrap();
        let mut out = String::new();
        for (i, (total, bytes, verb)) in NAMES.iter().enumerate() {
            for (name, help, pick_bytes) in [
                (total, format!("Total number of blobs {verb}"), false),
                (bytes, format!("Total number of bytes {verb}"), true),
            ] {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} counter");
                for ((user, repo, kind), v) in c.iter() {
                    let value = if pick_bytes { v.bytes[i] } else { v.count[i] };
                    let _ = writeln!(
                        out,
                        "{name}{{repo=\"{}\",type=\"{kind}\",user=\"{}\"}} {value}",
                        escape(repo),
                        escape(user)
                    );
                }
            }
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn render() {
        let m = super::Metrics::default();
        m.record("alice", "alice/laptop", "data", super::Op::Write, 100);
        m.record("alice", "alice/laptop", "data", super::Op::Write, 50);
        m.record("bob", "bob", "locks", super::Op::Delete, 10);
        let text = m.render();
        assert!(text.contains("rest_server_blob_write_total{repo=\"alice/laptop\",type=\"data\",user=\"alice\"} 2\n"), "{text}");
        assert!(text.contains("rest_server_blob_write_bytes_total{repo=\"alice/laptop\",type=\"data\",user=\"alice\"} 150\n"));
        assert!(text.contains(
            "rest_server_blob_delete_bytes_total{repo=\"bob\",type=\"locks\",user=\"bob\"} 10\n"
        ));
        assert!(text.contains("# TYPE rest_server_blob_read_total counter\n"));
    }
}
