//! Network health probes: an HTTP GET or a TCP connection to a port of the
//! container, made by berth rather than by a tool in the image.
//!
//! The shim runs a probe in a short-lived child of its own (see the shim's
//! `check`), which is the only process that ever enters the container's
//! network namespace: [`enter_network_of`] opens `/proc/PID/ns/net` of the
//! container's init, checks that the pid still names that init (its start
//! time) so a recycled pid is never entered, and `setns`es into it.
//!
//! Where a probe connects, decided here once ([`probe_address`]):
//!
//! - a container with a network namespace of its own: its own address (the
//!   first IPv4 address of its first non-loopback interface, `eth0` being
//!   its first network; else the first global IPv6 one), as kubelet probes
//!   the pod's IP, so a service bound to that address only is reached;
//!   with no such address (`networkMode: none`) 127.0.0.1 of its namespace;
//! - a container sharing the host's namespace (`networkMode: host`): the
//!   host's 127.0.0.1, nothing entered.
//!
//! The HTTP client is deliberately minimal: one `GET` with `Host`, the
//! configured headers and `Connection: close`, then a bounded read
//! ([`MAX_RESPONSE_HEAD`]) until the status line is complete. Healthy is a
//! 2xx or 3xx status (as kubelet), within the timeout. Every result is one
//! short line for `status.json` and the events log.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use serde::{Deserialize, Serialize};

use super::process::ProcessId;

/// The most of a response read while looking for its status line.
pub const MAX_RESPONSE_HEAD: usize = 4096;

/// An HTTP probe as the shim runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpProbe {
    pub port: u16,
    /// The request target: a path starting with `/`, maybe with a query.
    pub path: String,
    /// The Host header; None: the address and port probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Extra request headers, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

/// A TCP probe as the shim runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpProbe {
    pub port: u16,
}

/// A network probe to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkProbe<'a> {
    Http(&'a HttpProbe),
    Tcp(TcpProbe),
}

impl NetworkProbe<'_> {
    fn port(&self) -> u16 {
        match self {
            NetworkProbe::Http(http) => http.port,
            NetworkProbe::Tcp(tcp) => tcp.port,
        }
    }

    /// `http` or `tcp`, as messages name it.
    pub fn kind(&self) -> &'static str {
        match self {
            NetworkProbe::Http(_) => "http",
            NetworkProbe::Tcp(_) => "tcp",
        }
    }
}

/// What one probe came to: whether it passed, and one short line saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub passed: bool,
    pub message: String,
}

impl Outcome {
    fn passed(message: String) -> Self {
        Outcome {
            passed: true,
            message,
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Outcome {
            passed: false,
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("open {path}: {source}")]
    OpenNamespace { path: PathBuf, source: io::Error },
    #[error("the container's init (pid {pid}) is gone")]
    InitGone { pid: u32 },
    #[error("setns {path}: {source}")]
    Setns { path: PathBuf, source: nix::Error },
}

/// Whose network namespace the probe is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// The container's own: it was entered.
    Container,
    /// The container shares this process's (the host's): nothing entered.
    Shared,
}

/// Moves this process into the network namespace of the container whose
/// init is `init`, unless it shares ours. Only for a process that exists to
/// probe: it stays there.
pub fn enter_network_of(init: ProcessId) -> Result<Namespace, ProbeError> {
    let path = PathBuf::from(format!("/proc/{}/ns/net", init.pid));
    let file = File::open(&path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ProbeError::InitGone { pid: init.pid },
        _ => ProbeError::OpenNamespace {
            path: path.clone(),
            source,
        },
    })?;
    // Checked after the open: if the init still lives now, it lived when
    // the file was opened (a pid is not reused while its process lives),
    // so the namespace is the container's and no newcomer's.
    if !init.lives() {
        return Err(ProbeError::InitGone { pid: init.pid });
    }
    if shares_our_namespace(&file) {
        return Ok(Namespace::Shared);
    }
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|source| ProbeError::Setns { path, source })?;
    Ok(Namespace::Container)
}

/// Whether the namespace file names the namespace this process is in.
fn shares_our_namespace(namespace: &File) -> bool {
    match (namespace.metadata(), std::fs::metadata("/proc/self/ns/net")) {
        (Ok(theirs), Ok(ours)) => theirs.dev() == ours.dev() && theirs.ino() == ours.ino(),
        _ => false,
    }
}

/// The address a probe connects to in `namespace` (see the module's doc),
/// from the addresses of its interfaces as (interface, address), in the
/// kernel's order.
pub fn probe_address(namespace: Namespace, interfaces: &[(String, IpAddr)]) -> IpAddr {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    if namespace == Namespace::Shared {
        return loopback;
    }
    let own = |want_v4: bool| {
        let mut candidates: Vec<&(String, IpAddr)> = interfaces
            .iter()
            .filter(|(name, ip)| name != "lo" && ip.is_ipv4() == want_v4 && is_routable(ip))
            .collect();
        // eth0 before eth1 ... : the manifest's first network first.
        candidates.sort_by_key(|(name, _)| interface_rank(name));
        candidates.first().map(|(_, ip)| *ip)
    };
    own(true).or_else(|| own(false)).unwrap_or(loopback)
}

/// An address another host could reach: not loopback, unspecified or
/// IPv6 link-local.
fn is_routable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified() && !v4.is_link_local(),
        IpAddr::V6(v6) => {
            !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80
        }
    }
}

/// `ethN` sorts by N, before any other name (kept in the kernel's order).
fn interface_rank(name: &str) -> u32 {
    name.strip_prefix("eth")
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

/// The addresses of this namespace's interfaces, as (interface, address).
pub fn interface_addresses() -> Vec<(String, IpAddr)> {
    let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addresses
        .filter_map(|entry| {
            let address = entry.address?;
            let ip = match (address.as_sockaddr_in(), address.as_sockaddr_in6()) {
                (Some(v4), _) => IpAddr::V4(v4.ip()),
                (None, Some(v6)) => IpAddr::V6(v6.ip()),
                (None, None) => return None,
            };
            Some((entry.interface_name, ip))
        })
        .collect()
}

/// Runs `probe` against `ip` with `timeout` for all of it.
pub fn run(probe: NetworkProbe<'_>, ip: IpAddr, timeout: Duration) -> Outcome {
    let target = SocketAddr::new(ip, probe.port());
    let deadline = Instant::now() + timeout;
    let stream = match TcpStream::connect_timeout(&target, timeout) {
        Ok(stream) => stream,
        Err(e) if is_timeout(&e) => {
            return Outcome::failed(format!(
                "connect {target}: timed out after {}",
                human(timeout)
            ))
        }
        Err(e) => return Outcome::failed(format!("connect {target}: {}", short_error(&e))),
    };
    match probe {
        NetworkProbe::Tcp(_) => Outcome::passed(format!("connected to {target}")),
        NetworkProbe::Http(http) => match exchange(stream, &request(http, target), deadline) {
            Ok(head) => judge_response(&head, target),
            Err(e) if is_timeout(&e) => Outcome::failed(format!(
                "http {target}: no status line after {}",
                human(timeout)
            )),
            Err(e) => Outcome::failed(format!("http {target}: {}", short_error(&e))),
        },
    }
}

/// The request an HTTP probe sends to `target`.
pub fn request(probe: &HttpProbe, target: SocketAddr) -> Vec<u8> {
    let host = probe.host.clone().unwrap_or_else(|| target.to_string());
    let mut text = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: berth-probe\r\nAccept: */*\r\nConnection: close\r\n",
        probe.path
    );
    for (name, value) in &probe.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// Writes `request` and reads until the status line ends, the peer closes
/// or [`MAX_RESPONSE_HEAD`] bytes came, all before `deadline`.
fn exchange(mut stream: TcpStream, request: &[u8], deadline: Instant) -> io::Result<Vec<u8>> {
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))
    };
    stream.set_write_timeout(Some(remaining()?))?;
    stream.write_all(request)?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while head.len() < MAX_RESPONSE_HEAD && !head.windows(2).any(|w| w == b"\r\n") {
        stream.set_read_timeout(Some(remaining()?))?;
        let room = (MAX_RESPONSE_HEAD - head.len()).min(buf.len());
        match stream.read(&mut buf[..room]) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(head)
}

/// The outcome of the response that began with `head`.
fn judge_response(head: &[u8], target: SocketAddr) -> Outcome {
    match parse_status_line(head) {
        Ok(code) if is_healthy_status(code) => {
            Outcome::passed(format!("http {code} from {target}"))
        }
        Ok(code) => Outcome::failed(format!("http {code} from {target}")),
        Err(e) => Outcome::failed(format!("http {target}: {e}")),
    }
}

/// 2xx and 3xx pass, as kubelet's HTTP probes.
pub fn is_healthy_status(code: u16) -> bool {
    (200..400).contains(&code)
}

/// Why a response's start was not a status line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusLineError {
    #[error("the connection closed before a response")]
    Empty,
    #[error("no status line in the first {MAX_RESPONSE_HEAD} bytes")]
    TooLong,
    #[error("the response is not HTTP: {0:?}")]
    NotHttp(String),
}

/// The status code of `HTTP/x.y CODE [REASON]\r\n` at the start of `head`:
/// the version must be HTTP/digit.digit, the code three digits.
pub fn parse_status_line(head: &[u8]) -> Result<u16, StatusLineError> {
    if head.is_empty() {
        return Err(StatusLineError::Empty);
    }
    let Some(end) = head.windows(2).position(|w| w == b"\r\n") else {
        return Err(if head.len() >= MAX_RESPONSE_HEAD {
            StatusLineError::TooLong
        } else {
            StatusLineError::NotHttp(shown(head))
        });
    };
    let line = &head[..end];
    let not_http = || StatusLineError::NotHttp(shown(line));
    let mut parts = line.splitn(3, |&b| b == b' ');
    let version = parts.next().ok_or_else(not_http)?;
    let code = parts.next().ok_or_else(not_http)?;
    let version_ok = version.len() == 8
        && version.starts_with(b"HTTP/")
        && version[5].is_ascii_digit()
        && version[6] == b'.'
        && version[7].is_ascii_digit();
    if !version_ok || code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(not_http());
    }
    std::str::from_utf8(code)
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|c| (100..=999).contains(c))
        .ok_or_else(not_http)
}

/// At most 40 bytes of what the peer sent, for a message.
fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned()
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// `connection refused` rather than `Connection refused (os error 111)`.
fn short_error(e: &io::Error) -> String {
    let text = match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// `2s`, `1.5s`, `300ms`.
pub fn human(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn status_lines_give_their_code() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n\r\n"), Ok(200));
        assert_eq!(
            parse_status_line(b"HTTP/1.0 404 Not Found\r\nX: y"),
            Ok(404)
        );
        // The reason phrase may be empty, with or without its space.
        assert_eq!(parse_status_line(b"HTTP/1.1 503 \r\n"), Ok(503));
        assert_eq!(parse_status_line(b"HTTP/1.1 302\r\n"), Ok(302));
    }

    #[test]
    fn what_is_not_a_status_line_is_refused() {
        assert_eq!(parse_status_line(b""), Err(StatusLineError::Empty));
        for bad in [
            &b"SSH-2.0-OpenSSH_9.2\r\n"[..],
            b"HTTP/1.1 20 OK\r\n",
            b"HTTP/1.1 2000 OK\r\n",
            b"HTTP/1.1 abc OK\r\n",
            b"HTTP/x.1 200 OK\r\n",
            b"HTTP/1.1 099 Odd\r\n",
            b"HTTP/1.1 200 OK", // no line end yet, and the peer closed
        ] {
            assert!(
                matches!(parse_status_line(bad), Err(StatusLineError::NotHttp(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let endless = vec![b'a'; MAX_RESPONSE_HEAD];
        assert_eq!(parse_status_line(&endless), Err(StatusLineError::TooLong));
    }

    #[test]
    fn two_and_three_hundreds_are_healthy() {
        for code in [200, 204, 301, 399] {
            assert!(is_healthy_status(code), "{code}");
        }
        for code in [100, 199, 400, 404, 500, 503] {
            assert!(!is_healthy_status(code), "{code}");
        }
    }

    #[test]
    fn the_request_carries_host_headers_and_closes() {
        let probe = HttpProbe {
            port: 8080,
            path: "/healthz?full=1".into(),
            host: None,
            headers: vec![("X-Probe".into(), "yes".into())],
        };
        let target: SocketAddr = "10.1.2.3:8080".parse().unwrap();
        let text = String::from_utf8(request(&probe, target)).unwrap();
        assert!(text.starts_with("GET /healthz?full=1 HTTP/1.1\r\nHost: 10.1.2.3:8080\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with("\r\nX-Probe: yes\r\n\r\n"));
        let named = HttpProbe {
            host: Some("example.test".into()),
            ..probe
        };
        let text = String::from_utf8(request(&named, target)).unwrap();
        assert!(text.contains("\r\nHost: example.test\r\n"), "{text}");
    }

    fn addresses(list: &[(&str, &str)]) -> Vec<(String, IpAddr)> {
        list.iter()
            .map(|(name, ip)| (name.to_string(), ip.parse().unwrap()))
            .collect()
    }

    #[test]
    fn a_probe_connects_to_the_first_networks_address_else_loopback() {
        let two = addresses(&[
            ("lo", "127.0.0.1"),
            ("eth1", "10.2.0.5"),
            ("eth0", "fe80::1"),
            ("eth0", "10.1.0.5"),
        ]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(probe_address(Namespace::Container, &two), ip("10.1.0.5"));
        let v6_only = addresses(&[("lo", "::1"), ("eth0", "fe80::1"), ("eth0", "fd00::5")]);
        assert_eq!(probe_address(Namespace::Container, &v6_only), ip("fd00::5"));
        let none = addresses(&[("lo", "127.0.0.1"), ("lo", "::1")]);
        assert_eq!(probe_address(Namespace::Container, &none), ip("127.0.0.1"));
        // The host's namespace: its loopback, whatever else it has.
        assert_eq!(probe_address(Namespace::Shared, &two), ip("127.0.0.1"));
    }

    /// A one-shot server on loopback answering `reply` to one request.
    fn serve_once(reply: &'static [u8]) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(reply);
            }
        });
        port
    }

    fn http(port: u16) -> HttpProbe {
        HttpProbe {
            port,
            path: "/".into(),
            host: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn http_probes_judge_the_status_and_say_it_briefly() {
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let ok = serve_once(b"HTTP/1.1 204 No Content\r\n\r\n");
        let outcome = run(
            NetworkProbe::Http(&http(ok)),
            local,
            Duration::from_secs(20),
        );
        assert_eq!(
            outcome,
            Outcome::passed(format!("http 204 from 127.0.0.1:{ok}"))
        );
        let sick = serve_once(b"HTTP/1.0 503 Service Unavailable\r\n\r\n");
        let outcome = run(
            NetworkProbe::Http(&http(sick)),
            local,
            Duration::from_secs(20),
        );
        assert_eq!(
            outcome,
            Outcome::failed(format!("http 503 from 127.0.0.1:{sick}"))
        );
    }

    #[test]
    fn a_closed_port_fails_with_the_reason() {
        // Bound, then dropped: nothing listens there now.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let outcome = run(
            NetworkProbe::Tcp(TcpProbe { port }),
            local,
            Duration::from_secs(20),
        );
        assert_eq!(
            outcome,
            Outcome::failed(format!("connect 127.0.0.1:{port}: connection refused"))
        );
    }

    #[test]
    fn a_server_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        // The kernel accepts the connection; nobody ever writes back.
        let outcome = run(
            NetworkProbe::Http(&http(port)),
            local,
            Duration::from_millis(300),
        );
        assert_eq!(
            outcome,
            Outcome::failed(format!("http 127.0.0.1:{port}: no status line after 300ms"))
        );
        drop(listener);
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(2)), "2s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_millis(300)), "300ms");
    }
}
