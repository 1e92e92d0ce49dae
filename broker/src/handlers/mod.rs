//! One file per packet handler (house rule 3). Each adds methods to the engine; the
//! dispatcher in `engine.rs` is the short `match` that picks one.

mod acks;
mod connect;
mod control;
mod disconnect;
mod publish;
mod subscribe;
mod unsubscribe;
