//! A real OCI distribution registry (`docker-registry` from Debian) on
//! loopback, one per test, plus a tiny raw HTTP/1.0 client to talk to it.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::prereq;

pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// Credentials when started with [`Registry::start_with_htpasswd`].
    pub creds: Option<(String, String)>,
    child: Child,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry on a free loopback port; None = skipped (no
    /// docker-registry outside CI).
    pub fn start() -> Option<Registry> {
        Self::start_inner(None)
    }

    /// Starts a registry that requires HTTP basic auth for `user`/`password`.
    /// The bcrypt hash comes from `htpasswd -Bbn` (Debian apache2-utils);
    /// without it this variant is skipped (None, with a notice), or fails under CI.
    pub fn start_with_htpasswd(user: &str, password: &str) -> Option<Registry> {
        let htpasswd = prereq::require_binary("htpasswd", "apache2-utils")?;
        let out = Command::new(htpasswd)
            .args(["-Bbn", user, password])
            .output()
            .expect("run htpasswd");
        assert!(
            out.status.success(),
            "htpasswd -Bbn failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout)
            .expect("htpasswd output")
            .trim()
            .to_string();
        Self::start_inner(Some((user.to_string(), password.to_string(), line)))
    }

    fn start_inner(auth: Option<(String, String, String)>) -> Option<Registry> {
        let bin = prereq::require_binary("docker-registry", "docker-registry")?;
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .expect("registry tempdir");
        let htpasswd_path = dir.path().join("htpasswd");
        if let Some((_, _, line)) = &auth {
            fs::write(&htpasswd_path, format!("{line}\n")).expect("write htpasswd file");
        }
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                config_yaml(
                    dir.path(),
                    &addr,
                    auth.as_ref().map(|_| htpasswd_path.as_path()),
                ),
            )
            .expect("write registry config");
            let log_path = dir.path().join("registry.log");
            let log = fs::File::create(&log_path).expect("registry log");
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .expect("spawn docker-registry");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = child.try_wait().expect("try_wait registry") {
                    // Most likely the port was taken between probe and bind: retry.
                    last_log = format!(
                        "exited with {status}: {}",
                        fs::read_to_string(&log_path).unwrap_or_default()
                    );
                    break;
                }
                // The port must be held by OUR child: another test's registry
                // may have grabbed it between free_port() and our bind.
                if child_listens_on(child.id(), port) {
                    let code = try_status(&addr, "/v2/");
                    if code == Some(200) || code == Some(401) {
                        let creds = auth.map(|(u, p, _)| (u, p));
                        return Some(Registry {
                            addr,
                            creds,
                            child,
                            dir,
                        });
                    }
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "docker-registry on {addr} did not answer GET /v2/ within 10 s; log:\n{}",
                        fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("docker-registry failed to start 5 times; last: {last_log}");
    }

    /// The registry's temp dir (config, storage, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's own log (stdout + stderr), for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `ADDR/repo_and_tag`, a reference berth can pull.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{}", self.addr, repo_and_tag)
    }

    /// `skopeo copy --all` of `oci:LAYOUT:TAG` to `docker://ADDR/REPO:TAG`
    /// (plain HTTP). Panics with skopeo's stderr on failure.
    pub fn push_oci_layout(&self, layout: &Path, tag: &str, repo_and_tag: &str) {
        self.skopeo_push(&format!("oci:{}:{tag}", layout.display()), repo_and_tag);
    }

    /// `skopeo copy --all` of an oci-archive / docker-archive / any skopeo
    /// source reference (e.g. `docker-archive:/x.tar`).
    pub fn skopeo_push(&self, source: &str, repo_and_tag: &str) {
        let skopeo = prereq::require_binary("skopeo", "skopeo").expect("skopeo is needed to push");
        let mut cmd = Command::new(skopeo);
        cmd.args([
            "--insecure-policy",
            "copy",
            "--all",
            "--quiet",
            "--dest-tls-verify=false",
        ]);
        if let Some((u, p)) = &self.creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        cmd.arg(source)
            .arg(format!("docker://{}", self.reference(repo_and_tag)));
        // Keep skopeo away from any auth file of the machine.
        cmd.env("REGISTRY_AUTH_FILE", self.dir.path().join("auth.json"));
        let out = cmd.output().expect("run skopeo");
        if !out.status.success() {
            panic!(
                "skopeo copy {source} -> {} failed ({}):\n{}",
                self.reference(repo_and_tag),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// GET on this registry, with basic auth when it has credentials.
    pub fn get(&self, path: &str, accept: &str) -> (u16, Vec<u8>) {
        let auth = self.creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        http_get_auth(&self.addr, path, accept, auth)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Only our own child, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_yaml(dir: &Path, addr: &str, htpasswd: Option<&Path>) -> String {
    let mut y = format!(
        "version: 0.1
log:
  level: error
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: berth-test-fixture
",
        storage = dir.join("storage").display()
    );
    if let Some(p) = htpasswd {
        y.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            p.display()
        ));
    }
    y
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// True when process `pid` holds the LISTEN socket on 127.0.0.1:`port`
/// (matched by socket inode through /proc/net/tcp and /proc/PID/fd).
fn child_listens_on(pid: u32, port: u16) -> bool {
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let local = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && f[1] == local && f[3] == "0A").then(|| format!("socket:[{}]", f[9]))
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        fs::read_link(fd.path())
            .map(|t| inodes.iter().any(|i| t.as_os_str() == i.as_str()))
            .unwrap_or(false)
    })
}

fn try_status(addr: &str, path: &str) -> Option<u16> {
    http_request(addr, path, &[], Duration::from_millis(500))
        .ok()
        .map(|(s, _)| s)
}

/// `GET path` over plain HTTP/1.0 with this Accept header. Returns (status,
/// body). Panics on connection errors.
pub fn http_get(addr: &str, path: &str, accept: &str) -> (u16, Vec<u8>) {
    http_get_auth(addr, path, accept, None)
}

/// [`http_get`] with optional basic auth (user, password).
pub fn http_get_auth(
    addr: &str,
    path: &str,
    accept: &str,
    auth: Option<(&str, &str)>,
) -> (u16, Vec<u8>) {
    let mut headers = vec![format!("Accept: {accept}")];
    if let Some((u, p)) = auth {
        headers.push(format!(
            "Authorization: Basic {}",
            base64(format!("{u}:{p}").as_bytes())
        ));
    }
    http_request(addr, path, &headers, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

fn http_request(
    addr: &str,
    path: &str,
    headers: &[String],
    timeout: Duration,
) -> std::io::Result<(u16, Vec<u8>)> {
    let sock = addr
        .parse()
        .map_err(|e| std::io::Error::other(format!("bad addr {addr}: {e}")))?;
    let mut s = TcpStream::connect_timeout(&sock, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of HTTP headers"))?;
    let head = String::from_utf8_lossy(&resp[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    Ok((status, resp[end + 4..].to_vec()))
}

/// Standard base64 with padding (for basic auth).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The storage root of a registry, e.g. to corrupt a blob on disk.
pub fn storage_dir(r: &Registry) -> PathBuf {
    r.dir().join("storage")
}
