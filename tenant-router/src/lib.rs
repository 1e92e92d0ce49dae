//! Hop 3 of the data path: placement (tenant → worker), session ownership and the gateway ↔
//! worker link.
#![forbid(unsafe_code)]
