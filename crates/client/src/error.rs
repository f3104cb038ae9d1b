//! The one error type of the client library. Messages name the problem in
//! words a user can act on.

/// Everything that can go wrong talking to the auscout module.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or refused the credentials.
    #[error("cannot connect to {target}: {}", one_line(source))]
    Connect {
        target: String,
        #[source]
        source: redis::RedisError,
    },
    /// A Redis command failed (error reply, lost connection after retries).
    #[error("{}", one_line(.0))]
    Redis(#[from] redis::RedisError),
    /// The server answered something this client does not understand.
    #[error("unexpected reply to {command}: {detail}")]
    Reply {
        command: &'static str,
        detail: String,
    },
    /// The sharding metadata of an index disagrees with the request.
    #[error("index {key}: {detail}")]
    Layout { key: String, detail: String },
}

impl ClientError {
    /// The module's "no such key": the index (or this shard of it) has no
    /// tracks yet.
    pub fn is_no_such_key(&self) -> bool {
        match self {
            ClientError::Redis(e) => {
                e.kind() == redis::ErrorKind::ResponseError && e.detail() == Some("no such key")
            }
            _ => false,
        }
    }

    /// The server could not be reached (refused, timed out, dropped): worth
    /// telling apart from a reply the server gave.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ClientError::Connect { .. } => true,
            // Transient, but not a redirect or a replica refusing a write:
            // those are answers of a server that was reached.
            ClientError::Redis(e) => {
                is_transient(e)
                    && !matches!(
                        e.kind(),
                        redis::ErrorKind::Moved
                            | redis::ErrorKind::Ask
                            | redis::ErrorKind::ReadOnly
                    )
            }
            _ => false,
        }
    }
}

/// Redis error texts can span lines (server replies, composite cluster
/// errors); the CLI promises one line per problem.
fn one_line(err: &redis::RedisError) -> String {
    err.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A reply of `command` this client does not understand.
pub(crate) fn bad_reply(command: &'static str, detail: String) -> ClientError {
    ClientError::Reply { command, detail }
}

/// Failures that another attempt, maybe on a new connection, can cure.
pub(crate) fn is_transient(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            redis::ErrorKind::TryAgain
                | redis::ErrorKind::ClusterDown
                | redis::ErrorKind::MasterDown
                | redis::ErrorKind::BusyLoadingError
                | redis::ErrorKind::Moved
                | redis::ErrorKind::Ask
                | redis::ErrorKind::ReadOnly
                | redis::ErrorKind::ClusterConnectionNotFound
        )
}
