//! Restoring snapshots (being written).
