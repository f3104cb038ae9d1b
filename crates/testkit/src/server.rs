//! Integration-test harness: a real `redis-server` with the auscout module
//! loaded, on its own free port and in its own temporary directory, killed
//! when the [`Server`] is dropped.
//!
//! The module is found through the env var `AUSCOUT_MODULE` (a path to
//! `libauscout.so`), else next to the test binary: the newer of
//! `target/<profile>/deps/libauscout.so` (what `cargo test -p auscout` has just
//! built; cargo does not copy it up for tests) and `target/<profile>/libauscout.so`
//! (what `cargo build` produces). The server binary is `redis-server`
//! from `PATH`, or the env var `REDIS_SERVER`.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a server may take to answer `PING` after starting (loading a
/// big RDB or AOF counts).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Path of the module under test.
pub fn module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("AUSCOUT_MODULE") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("target/<profile>/deps");
    let candidates = [
        deps.join("libauscout.so"),
        deps.parent().unwrap_or(deps).join("libauscout.so"),
    ];
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    candidates
        .iter()
        .filter(|p| p.exists())
        .max_by_key(|p| modified(p))
        .cloned()
        .unwrap_or_else(|| candidates[1].clone())
}

/// A port nothing listens on now (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `redis-server` with the module loaded.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Extra `redis-server` arguments this server was started with (kept for restarts).
    args: Vec<String>,
    module_args: Vec<String>,
}

impl Server {
    /// A fresh server with default settings.
    pub fn start() -> Server {
        Self::builder().start()
    }

    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The server's working directory (RDB, AOF, `redis.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A new connection to this server.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .unwrap_or_else(|e| panic!("connect to port {}: {e}\n{}", self.port, self.log()))
    }

    /// The server log so far (for assertion messages).
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir().join("redis.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// True while the server process runs.
    pub fn is_alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the process (no save) and starts a new one in the same directory
    /// with the same arguments plus `extra` (e.g. to turn AOF on).
    pub fn restart(mut self, extra: &[&str]) -> Server {
        self.kill();
        let mut args = self.args.clone();
        args.extend(extra.iter().map(|s| s.to_string()));
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        spawn(dir, args, self.module_args.clone())
    }

    /// Stops the server (no save) but keeps its port and directory, so
    /// [`Server::resume`] brings it back where clients expect it: a dump
    /// saved before (`SAVE`) is loaded again.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts a stopped server again on the same port, in the same
    /// directory, with the same arguments.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "resume: the server is running");
        self.child = Some(launch(
            self.dir.path(),
            self.port,
            &self.args,
            &self.module_args,
        ));
        wait_ready(self);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Default)]
pub struct ServerBuilder {
    args: Vec<String>,
    module_args: Vec<String>,
    files: Vec<(String, Vec<u8>)>,
}

impl ServerBuilder {
    /// An extra server option, e.g. `.arg("--appendonly").arg("yes")`.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_owned());
        self
    }

    /// An argument after `--loadmodule <path>` (module configs: `name value`).
    pub fn module_arg(mut self, a: &str) -> Self {
        self.module_args.push(a.to_owned());
        self
    }

    /// A file written into the server's directory before it starts (e.g. a
    /// `dump.rdb` to load).
    pub fn file(mut self, name: &str, contents: Vec<u8>) -> Self {
        self.files.push((name.to_owned(), contents));
        self
    }

    pub fn start(self) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, contents) in &self.files {
            std::fs::write(dir.path().join(name), contents).expect("write file into server dir");
        }
        spawn(dir, self.args, self.module_args)
    }
}

fn spawn(dir: tempfile::TempDir, args: Vec<String>, module_args: Vec<String>) -> Server {
    let port = free_port();
    let child = launch(dir.path(), port, &args, &module_args);
    let mut server = Server {
        child: Some(child),
        port,
        dir,
        args,
        module_args,
    };
    wait_ready(&mut server);
    server
}

fn launch(dir: &Path, port: u16, args: &[String], module_args: &[String]) -> Child {
    let module = module_path();
    assert!(
        module.exists(),
        "module not found at {} (build it, or set AUSCOUT_MODULE)",
        module.display()
    );
    let server_bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
    let mut cmd = Command::new(&server_bin);
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--bind")
        .arg("127.0.0.1")
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg("redis.log")
        .arg("--save")
        .arg("")
        .arg("--enable-debug-command")
        .arg("yes")
        .arg("--loadmodule")
        .arg(&module)
        .args(module_args)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn()
        .unwrap_or_else(|e| panic!("start {server_bin}: {e}"))
}

fn wait_ready(server: &mut Server) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if !server.is_alive() {
            panic!("redis-server exited during startup:\n{}", server.log());
        }
        let pong = redis::Client::open(server.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
        if matches!(pong.as_deref(), Ok("PONG")) {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "redis-server did not answer PING in time:\n{}",
                server.log()
            );
        }
        sleep(Duration::from_millis(50));
    }
}

/// Encodes hashes (or toggles) in the wire format: big-endian u32s.
pub fn wire(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// Polls `INFO persistence` until no BGSAVE / AOF rewrite is running.
pub fn wait_persistence_idle(conn: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query(conn)
            .expect("INFO");
        let busy = info.lines().any(|l| {
            (l.starts_with("aof_rewrite_in_progress:")
                || l.starts_with("aof_rewrite_scheduled:")
                || l.starts_with("rdb_bgsave_in_progress:"))
                && !l.ends_with(":0")
        });
        if !busy {
            return;
        }
        assert!(Instant::now() < deadline, "persistence still busy:\n{info}");
        sleep(Duration::from_millis(50));
    }
}

/// Waits until every replica has applied everything `primary` wrote so far,
/// whoever wrote it: its link is up and its `slave_repl_offset` has reached
/// the primary's `master_repl_offset` as read on entry. (`WAIT` would not
/// do: it waits only for the writes of the connection that sends it.)
pub fn wait_replicated(primary: &Server, replicas: &[&Server]) {
    let target: u64 = info_field(&mut primary.conn(), "replication", "master_repl_offset")
        .and_then(|v| v.parse().ok())
        .expect("INFO replication of the primary");
    let deadline = Instant::now() + Duration::from_secs(30);
    for replica in replicas {
        let mut conn = replica.conn();
        loop {
            let link = info_field(&mut conn, "replication", "master_link_status");
            let offset: Option<u64> = info_field(&mut conn, "replication", "slave_repl_offset")
                .and_then(|v| v.parse().ok());
            if link.as_deref() == Some("up") && offset.is_some_and(|o| o >= target) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica on port {} did not catch up with offset {target}: link {link:?}, offset {offset:?}",
                replica.port
            );
            sleep(Duration::from_millis(20));
        }
    }
}

/// One field of an `INFO` section (e.g. `info_field(c, "auscout", "auscout_tracks")`).
pub fn info_field(conn: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query(conn).ok()?;
    info.lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    })
}

/// The server's CPU time so far, all its threads (`used_cpu_user` +
/// `used_cpu_sys` of `INFO cpu`), in seconds.
pub fn cpu_seconds(conn: &mut redis::Connection) -> f64 {
    ["used_cpu_user", "used_cpu_sys"]
        .iter()
        .map(|f| {
            info_field(conn, "cpu", f)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("INFO cpu has no {f}"))
        })
        .sum()
}

/// `CONFIG SET name value`.
pub fn config_set(conn: &mut redis::Connection, name: &str, value: &str) -> redis::RedisResult<()> {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(conn)
}

/// `CONFIG GET name` for one config: its value.
pub fn config_get(conn: &mut redis::Connection, name: &str) -> String {
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(conn)
        .expect("CONFIG GET");
    v.get(1).cloned().unwrap_or_default()
}
