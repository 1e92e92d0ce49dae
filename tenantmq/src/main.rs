//! The `tenantmq` binary.
fn main() {}
