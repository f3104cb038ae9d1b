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

/// Redis error texts can span lines (server replies, composite cluster
/// errors); the CLI promises one line per problem.
fn one_line(err: &redis::RedisError) -> String {
    err.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
