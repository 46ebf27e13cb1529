//! A health check as probes: a readinessProbe always (a Service routes to
//! a pod only while it is ready, which is what `condition: healthy` waits
//! for), a livenessProbe too with `onUnhealthy: restart`, and a
//! startupProbe for `startPeriod` (failures before it passes do not
//! count, as in berth's grace period).

use k8s_openapi::api::core::v1::{ExecAction, HTTPGetAction, HTTPHeader, Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::Template;
use super::{names, Output};
use crate::manifest::diagnostic::PathSegment;
use crate::manifest::quantity::Duration;
use crate::manifest::{Healthcheck, OnUnhealthy, ProbeScheme};

/// berth's defaults, spelled out: Kubernetes' own differ (10 s period,
/// 1 s timeout).
const DEFAULT_INTERVAL_SECS: u64 = 30;
const DEFAULT_TIMEOUT_SECS: u64 = 30;

#[derive(Debug, Default)]
pub struct Probes {
    pub readiness: Option<Probe>,
    pub liveness: Option<Probe>,
    pub startup: Option<Probe>,
}

pub fn probes(out: &mut Output, template: &Template) -> Probes {
    let Some(check) = &template.spec.healthcheck else {
        return Probes::default();
    };
    let period = seconds(
        out,
        template,
        "interval",
        check.interval,
        DEFAULT_INTERVAL_SECS,
    );
    let timeout = seconds(
        out,
        template,
        "timeout",
        check.timeout,
        DEFAULT_TIMEOUT_SECS,
    );
    let retries =
        i32::try_from(check.retries.unwrap_or(Healthcheck::DEFAULT_RETRIES)).unwrap_or(i32::MAX);
    let probe = Probe {
        period_seconds: Some(period),
        timeout_seconds: Some(timeout),
        failure_threshold: Some(retries),
        ..handler(check)
    };
    let startup = check.start_period.map(|grace| {
        // Long enough for the grace period and then `retries` failures.
        let grace_secs = grace.as_std().as_secs_f64();
        let grace_periods = (grace_secs / f64::from(period)).ceil() as i32;
        Probe {
            failure_threshold: Some(grace_periods.saturating_add(retries)),
            ..probe.clone()
        }
    });
    let liveness = (check.on_unhealthy == OnUnhealthy::Restart).then(|| probe.clone());
    Probes {
        readiness: Some(probe),
        liveness,
        startup,
    }
}

/// The check itself: exec, httpGet or tcpSocket.
fn handler(check: &Healthcheck) -> Probe {
    if let Some(http) = &check.http {
        let mut headers: Vec<HTTPHeader> = http
            .headers
            .iter()
            .map(|(name, value)| HTTPHeader {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        // berth's `host` is the Host header; a probe's `host` is the address
        // dialled, which must stay the pod's own.
        if let Some(host) = &http.host {
            headers.push(HTTPHeader {
                name: "Host".to_string(),
                value: host.clone(),
            });
        }
        return Probe {
            http_get: Some(HTTPGetAction {
                path: Some(http.path.clone()),
                port: IntOrString::Int(i32::from(http.port)),
                scheme: Some(
                    match http.scheme {
                        ProbeScheme::Http => "HTTP",
                        ProbeScheme::Https => "HTTPS",
                    }
                    .to_string(),
                ),
                http_headers: (!headers.is_empty()).then_some(headers),
                host: None,
            }),
            ..Probe::default()
        };
    }
    if let Some(tcp) = &check.tcp {
        return Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(i32::from(tcp.port)),
                host: None,
            }),
            ..Probe::default()
        };
    }
    Probe {
        exec: Some(ExecAction {
            command: check.exec.clone(),
        }),
        ..Probe::default()
    }
}

/// A probe duration in whole seconds (at least 1), warning when rounding
/// changed it.
fn seconds(
    out: &mut Output,
    template: &Template,
    field: &str,
    value: Option<Duration>,
    default_secs: u64,
) -> i32 {
    let duration = value.unwrap_or(Duration::from_secs(default_secs));
    let (secs, rounded) = names::whole_seconds(duration, 1);
    if rounded {
        out.warn(
            template.located,
            &template.path(&[PathSegment::from("healthcheck"), PathSegment::from(field)]),
            format!("probes count whole seconds: {duration} becomes {secs}s"),
        );
    }
    i32::try_from(secs).unwrap_or(i32::MAX)
}
