//! Walking snapshot trees (being written).
