//! HTTP and TCP health probes end to end, as root with real runc: busybox
//! `httpd` and `nc` serve inside containers whose image holds no probing
//! tool berth uses; the shim probes from inside each container's network
//! namespace (loopback with `networkMode: none`, the container's own address
//! on a bridge network, the host's loopback with `networkMode: host`).
//! Health is polled from `berth inspect` for up to 60 s.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::prereq;
use common::site::{container_yaml, Site};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(60);

fn ready(test: &str) -> bool {
    prereq::require_apply(test)
}

/// A busybox container on loopback only serving `/var/www` (which holds
/// `ok.txt`) with httpd on `port`, and `healthcheck` (indented by four
/// spaces under `healthcheck:`) with a quick interval.
fn httpd_yaml(name: &str, bind: &str, extra: &str, healthcheck: &str) -> String {
    container_yaml(
        name,
        &format!(
            "  command: [sh, -c, \"echo ok > /var/www/ok.txt; exec httpd -f -p {bind} -h /var/www\"]\n{extra}  healthcheck:\n    interval: 300ms\n    timeout: 5s\n{healthcheck}"
        ),
    )
}

/// Polls `berth inspect NAME` until `done` holds for its status, for at
/// most [`PATIENCE`]; the last status.
fn wait_for(site: &Site, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = site.inspect(name)["status"].clone();
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: not {what} after {PATIENCE:?}: {status:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn health_is(state: &'static str) -> impl Fn(&Value) -> bool {
    move |status| status["health"]["state"] == state
}

fn last_output(status: &Value) -> &str {
    status["health"]["lastOutput"].as_str().unwrap_or_default()
}

#[test]
fn an_http_probe_of_a_served_file_is_healthy() {
    if !ready("an_http_probe_of_a_served_file_is_healthy") {
        return;
    }
    let site = Site::new("hp");
    let name = site.unique_name("hpok");
    site.write(
        "web.yaml",
        &httpd_yaml(
            &name,
            "8080",
            "  networkMode: none\n",
            "    http:\n      path: /ok.txt\n      port: 8080\n      headers:\n        X-Probe: berth\n",
        ),
    );
    site.apply(&[]);
    let status = wait_for(&site, &name, "healthy", health_is("healthy"));
    assert_eq!(last_output(&status), "http 200 from 127.0.0.1:8080");
    assert_eq!(status["health"]["failingStreak"], 0);
}

#[test]
fn an_http_probe_of_a_missing_path_is_unhealthy() {
    if !ready("an_http_probe_of_a_missing_path_is_unhealthy") {
        return;
    }
    let site = Site::new("hm");
    let name = site.unique_name("hp404");
    site.write(
        "web.yaml",
        &httpd_yaml(
            &name,
            "8080",
            "  networkMode: none\n",
            "    retries: 2\n    http: {path: /missing, port: 8080}\n",
        ),
    );
    site.apply(&[]);
    let status = wait_for(&site, &name, "unhealthy", health_is("unhealthy"));
    assert_eq!(last_output(&status), "http 404 from 127.0.0.1:8080");
    // Only reported: the container still runs, never restarted.
    assert_eq!(status["phase"], "running");
    assert_eq!(status["restarts"], 0);
}

#[test]
fn a_tcp_probe_of_a_listening_port_is_healthy_and_of_a_closed_one_unhealthy() {
    if !ready("a_tcp_probe_of_a_listening_port_is_healthy_and_of_a_closed_one_unhealthy") {
        return;
    }
    let site = Site::new("ht");
    let open = site.unique_name("tcpopen");
    let closed = site.unique_name("tcpclosed");
    // nc -ll -e: a listener that stays after each connection.
    let nc = "  command: [nc, -ll, -p, \"9000\", -e, /bin/true]\n  networkMode: none\n  healthcheck:\n    interval: 300ms\n    timeout: 5s\n    retries: 1\n";
    site.write(
        "open.yaml",
        &container_yaml(&open, &format!("{nc}    tcp: {{port: 9000}}\n")),
    );
    site.write(
        "closed.yaml",
        &container_yaml(&closed, &format!("{nc}    tcp: {{port: 9001}}\n")),
    );
    site.apply(&[]);
    let status = wait_for(&site, &open, "healthy", health_is("healthy"));
    assert_eq!(last_output(&status), "connected to 127.0.0.1:9000");
    let status = wait_for(&site, &closed, "unhealthy", health_is("unhealthy"));
    assert_eq!(
        last_output(&status),
        "connect 127.0.0.1:9001: connection refused"
    );
}

#[test]
fn a_failing_probe_with_on_unhealthy_restart_restarts_the_container() {
    if !ready("a_failing_probe_with_on_unhealthy_restart_restarts_the_container") {
        return;
    }
    let site = Site::new("hr");
    let name = site.unique_name("hprestart");
    site.write(
        "web.yaml",
        &httpd_yaml(
            &name,
            "8080",
            "  networkMode: none\n",
            "    retries: 1\n    onUnhealthy: restart\n    http: {path: /missing, port: 8080}\n",
        ),
    );
    site.apply(&[]);
    let status = wait_for(&site, &name, "restarted twice", |s| {
        s["restarts"].as_u64().is_some_and(|n| n >= 2)
    });
    assert!(status["restarts"].as_u64().unwrap() >= 2, "{status:#}");
    let events = site.ok(&["events", "-o", "json"]);
    assert!(
        events.contains("unhealthy after 1 failures: http 404 from 127.0.0.1:8080"),
        "{events}"
    );
}

#[test]
fn a_container_on_a_bridge_network_is_probed_on_its_own_address() {
    if !ready("a_container_on_a_bridge_network_is_probed_on_its_own_address") {
        return;
    }
    let site = Site::new("hb");
    let bridge = format!("b{}", site.tag);
    site.own_bridge(&bridge);
    // A subnet of this test process's own, apart from every other test file's 10.2xx subnets.
    let third = std::process::id() % 250;
    let network = site.unique_name("hnet");
    let ip = format!("10.219.{third}.7");
    site.write(
        "net.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Network\nmetadata:\n  name: {network}\nspec:\n  driver: bridge\n  bridge: {bridge}\n  subnet: 10.219.{third}.0/24\n"
        ),
    );
    let name = site.unique_name("hpown");
    // Bound to its own address only: a probe of 127.0.0.1 would be refused.
    site.write(
        "web.yaml",
        &httpd_yaml(
            &name,
            &format!("{ip}:8080"),
            &format!("  networks:\n    - name: {network}\n      ip: {ip}\n"),
            "    http: {path: /ok.txt, port: 8080, host: web.example}\n",
        ),
    );
    site.apply(&[]);
    let status = wait_for(&site, &name, "healthy", health_is("healthy"));
    assert_eq!(last_output(&status), format!("http 200 from {ip}:8080"));
}

#[test]
fn a_host_network_container_is_probed_on_the_hosts_loopback() {
    if !ready("a_host_network_container_is_probed_on_the_hosts_loopback") {
        return;
    }
    let site = Site::new("hh");
    // A port free on the host now (the kernel's pick); httpd binds it next.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let name = site.unique_name("hphost");
    site.write(
        "web.yaml",
        &httpd_yaml(
            &name,
            &format!("127.0.0.1:{port}"),
            "  networkMode: host\n",
            &format!("    tcp: {{port: {port}}}\n"),
        ),
    );
    site.apply(&[]);
    let status = wait_for(&site, &name, "healthy", health_is("healthy"));
    assert_eq!(
        last_output(&status),
        format!("connected to 127.0.0.1:{port}")
    );
}

#[test]
fn berth_run_takes_an_http_probe_as_port_and_path() {
    if !ready("berth_run_takes_an_http_probe_as_port_and_path") {
        return;
    }
    let site = Site::new("hc");
    let name = site.unique_name("hprun");
    site.start(
        &name,
        &[
            "--net",
            "none",
            "--health-http",
            "8080/ok.txt",
            "--health-interval",
            "300ms",
        ],
        &[
            "sh",
            "-c",
            "echo ok > /var/www/ok.txt; exec httpd -f -p 8080 -h /var/www",
        ],
    );
    let status = wait_for(&site, &name, "healthy", health_is("healthy"));
    assert_eq!(last_output(&status), "http 200 from 127.0.0.1:8080");
    let image = site.busybox();
    let refused = site.run(&[
        "run",
        "--health-cmd",
        "true",
        "--health-tcp",
        "80",
        &image,
        "true",
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
