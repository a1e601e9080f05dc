//! The archiver (being written).
