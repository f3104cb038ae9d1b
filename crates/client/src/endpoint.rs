//! Where the server is and how to talk to it: an [`Endpoint`] (one Redis or
//! any node of a Redis Cluster, plus where lookups may be read from) and the
//! connections made from it.

use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, RedisError, Value,
};

use crate::error::ClientError;
use crate::replicas::{ReadFrom, ReplicaPolicy};

/// How long to wait for a TCP connection before calling a server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the server is: one Redis, or any node of a Redis Cluster.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub(crate) info: ConnectionInfo,
    cluster: bool,
    pub(crate) shown: String,
    pub(crate) read_from: ReadFrom,
    /// Replicas of a single primary, as given (none: ask the primary).
    pub(crate) replicas: Vec<ConnectionInfo>,
    pub(crate) policy: ReplicaPolicy,
}

impl Endpoint {
    /// From a `redis://[user:pass@]host:port/db` URL, or a host (a path
    /// starting with `/` is a Unix socket) and port.
    pub fn new(
        url: Option<&str>,
        host: &str,
        port: u16,
        cluster: bool,
    ) -> Result<Self, ClientError> {
        let (info, shown) = match url {
            Some(url) => (url.into_connection_info(), redact(url)),
            None if host.starts_with('/') => (
                format!("unix://{host}").into_connection_info(),
                host.to_owned(),
            ),
            None => (
                (host, port).into_connection_info(),
                format!("{host}:{port}"),
            ),
        };
        let info = info.map_err(|source| ClientError::Connect {
            target: shown.clone(),
            source,
        })?;
        Ok(Endpoint {
            info,
            cluster,
            shown,
            read_from: ReadFrom::Primary,
            replicas: Vec::new(),
            policy: ReplicaPolicy::default(),
        })
    }

    /// Where lookups go (see [`crate::replicas`]).
    pub fn read_from(mut self, read_from: ReadFrom) -> Self {
        self.read_from = read_from;
        self
    }

    /// The replicas of a single primary, as `host:port` (they share its
    /// credentials); lookups then go to them. A cluster finds its replicas
    /// itself.
    pub fn with_replicas(mut self, addrs: &[String]) -> Result<Self, ClientError> {
        if self.cluster && !addrs.is_empty() {
            return Err(ClientError::Connect {
                target: self.shown.clone(),
                source: RedisError::from((
                    ErrorKind::InvalidClientConfig,
                    "replica addresses are for a single primary; a cluster's are found with read-from replicas",
                )),
            });
        }
        for addr in addrs {
            let bad = || ClientError::Connect {
                target: addr.clone(),
                source: RedisError::from((ErrorKind::InvalidClientConfig, "expected HOST:PORT")),
            };
            let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
            let port: u16 = port.parse().map_err(|_| bad())?;
            self.replicas.push(ConnectionInfo {
                addr: ConnectionAddr::Tcp(host.trim_matches(['[', ']']).to_owned(), port),
                redis: self.info.redis.clone(),
            });
        }
        if !addrs.is_empty() {
            self.read_from = ReadFrom::Replicas;
        }
        Ok(self)
    }

    /// When a replica may answer (default: [`ReplicaPolicy::default`]).
    pub fn replica_policy(mut self, policy: ReplicaPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The server as shown in messages (password removed).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    pub(crate) fn connect(&self) -> Result<Conn, ClientError> {
        self.connect_via(&[])
    }

    /// Connects; on a cluster, through the given node or, if it is down
    /// (e.g. failing over), any of `also` (nodes seen earlier).
    pub(crate) fn connect_via(&self, also: &[(String, u16)]) -> Result<Conn, ClientError> {
        let wrap = |source| ClientError::Connect {
            target: self.shown.clone(),
            source,
        };
        if self.cluster {
            let mut nodes = vec![self.info.clone()];
            nodes.extend(also.iter().map(|(host, port)| ConnectionInfo {
                addr: ConnectionAddr::Tcp(host.clone(), *port),
                redis: self.info.redis.clone(),
            }));
            let client = ClusterClient::builder(nodes)
                .connection_timeout(CONNECT_TIMEOUT)
                .build()
                .map_err(wrap)?;
            Ok(Conn::Cluster(Box::new(
                client.get_connection().map_err(wrap)?,
            )))
        } else {
            let client = redis::Client::open(self.info.clone()).map_err(wrap)?;
            Ok(Conn::Single(
                client
                    .get_connection_with_timeout(CONNECT_TIMEOUT)
                    .map_err(wrap)?,
            ))
        }
    }
}

/// Hides the password of a URL shown in messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// A connection to one server, or to a cluster through the cluster client.
pub(crate) enum Conn {
    Single(redis::Connection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    pub(crate) fn run(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        match self {
            Conn::Single(c) => cmd.query(c),
            Conn::Cluster(c) => cmd.query(c.as_mut()),
        }
    }

    /// Sends all commands before reading any reply: on a cluster the nodes
    /// work on them in parallel (the fan-out of a sharded lookup).
    pub(crate) fn run_all(&mut self, cmds: &[Cmd]) -> Result<Vec<Value>, RedisError> {
        match self {
            Conn::Single(c) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd.clone());
                }
                pipe.query(c)
            }
            Conn::Cluster(c) => {
                let mut pipe = redis::cluster::cluster_pipe();
                for cmd in cmds {
                    pipe.add_command(cmd.clone());
                }
                match pipe.query(c.as_mut()) {
                    // A pipeline hands redirects back as plain errors; one
                    // command at a time, the cluster client follows them
                    // (ASKING included) while a slot migrates.
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::Moved | ErrorKind::Ask | ErrorKind::TryAgain
                        ) =>
                    {
                        cmds.iter().map(|cmd| cmd.query(c.as_mut())).collect()
                    }
                    other => other,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("redis://u:secret@h:1/2"), "redis://***@h:1/2");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }
}
