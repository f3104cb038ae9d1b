//! SKELETON: filled in by the client work.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {}
