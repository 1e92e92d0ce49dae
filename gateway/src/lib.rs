//! Hop 1 of the data path: the device-facing edge.
#![forbid(unsafe_code)]
