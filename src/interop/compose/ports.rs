//! `ports:` in compose's short (`[IP:][HOST:]CONTAINER[/PROTO]`, ranges
//! too) and long (`{target, published, host_ip, protocol}`) syntax.

use std::net::IpAddr;

use crate::manifest::yaml::{Node, Pos, Value};
use crate::manifest::{PortMapping, Protocol};

use super::tree::{get, Ctx};
use super::ComposeError;

pub fn ports(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
) -> Result<Vec<PortMapping>, ComposeError> {
    let Value::Seq(items) = &node.value else {
        return Err(ctx.invalid(node.pos, field, "expected a list"));
    };
    let mut mappings = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        match &item.value {
            Value::Map(_) => mappings.extend(long(ctx, item, &at)?),
            _ => {
                let text = ctx.string(item, &at)?;
                mappings.extend(short(ctx, &text, item.pos, &at)?);
            }
        }
    }
    Ok(mappings)
}

/// `8080:80`, `127.0.0.1:8080:80/udp`, `[::1]:53:53`, `3000`, `9000-9001:8000-8001`.
pub fn short(
    ctx: &mut Ctx<'_>,
    text: &str,
    pos: Pos,
    field: &str,
) -> Result<Vec<PortMapping>, ComposeError> {
    let bad = |why: &str| ctx.invalid(pos, field, format!("port {text:?}: {why}"));
    let (body, protocol) = match text.rsplit_once('/') {
        Some((body, proto)) => (
            body,
            protocol_of(proto).ok_or_else(|| bad("the protocol is not tcp or udp"))?,
        ),
        None => (text, Protocol::Tcp),
    };
    let (host_ip, rest) =
        split_host_ip(body).ok_or_else(|| bad("the host address does not parse"))?;
    let (host, container) = match rest.rsplit_once(':') {
        Some((host, container)) => (Some(host).filter(|h| !h.is_empty()), container),
        None => (None, rest),
    };
    let container =
        range(container).ok_or_else(|| bad("the container port is not a port or a range"))?;
    let host = match host {
        Some(h) => Some(range(h).ok_or_else(|| bad("the host port is not a port or a range"))?),
        None => None,
    };
    pair_up(ctx, text, pos, field, host_ip, host, container, protocol)
}

#[allow(clippy::too_many_arguments)]
fn pair_up(
    ctx: &mut Ctx<'_>,
    text: &str,
    pos: Pos,
    field: &str,
    host_ip: Option<IpAddr>,
    host: Option<(u16, u16)>,
    container: (u16, u16),
    protocol: Protocol,
) -> Result<Vec<PortMapping>, ComposeError> {
    let mapping = |container_port, host_port| PortMapping {
        container_port,
        host_port,
        protocol,
        host_ip,
    };
    let count = container.1 - container.0;
    match host {
        None => {
            ctx.warn(pos, field, format!("port {text:?}: compose publishes it on a random host port; berth publishes it on the same port number (write HOST:CONTAINER to choose)"));
            Ok((container.0..=container.1)
                .map(|p| mapping(p, None))
                .collect())
        }
        Some((h0, h1)) if h1 - h0 == count => Ok((0..=count)
            .map(|i| mapping(container.0 + i, Some(h0 + i)))
            .collect()),
        Some((h0, _)) if count == 0 => {
            ctx.warn(pos, field, format!("port {text:?}: compose picks a free host port in the range; berth publishes on {h0}"));
            Ok(vec![mapping(container.0, Some(h0))])
        }
        Some(_) => Err(ctx.invalid(
            pos,
            field,
            format!("port {text:?}: the host and container ranges differ in length"),
        )),
    }
}

/// The host address in front of `HOST:CONTAINER`, if any, and the rest.
fn split_host_ip(body: &str) -> Option<(Option<IpAddr>, &str)> {
    if let Some(bracketed) = body.strip_prefix('[') {
        let (ip, rest) = bracketed.split_once(']')?;
        return Some((Some(ip.parse().ok()?), rest.strip_prefix(':')?));
    }
    let parts: Vec<&str> = body.splitn(3, ':').collect();
    if parts.len() == 3 {
        let rest = &body[parts[0].len() + 1..];
        return Some((Some(parts[0].parse().ok()?), rest));
    }
    Some((None, body))
}

/// `80` or `8000-8010`.
fn range(text: &str) -> Option<(u16, u16)> {
    let port = |t: &str| t.trim().parse::<u16>().ok().filter(|p| *p > 0);
    match text.split_once('-') {
        Some((a, b)) => Some((port(a)?, port(b)?)).filter(|(a, b)| a <= b),
        None => port(text).map(|p| (p, p)),
    }
}

fn protocol_of(text: &str) -> Option<Protocol> {
    match text.to_ascii_lowercase().as_str() {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        _ => None,
    }
}

/// `{target: 80, published: "8080", host_ip: 127.0.0.1, protocol: tcp, mode: host}`.
fn long(ctx: &mut Ctx<'_>, node: &Node, field: &str) -> Result<Vec<PortMapping>, ComposeError> {
    let target = get(node, "target")
        .ok_or_else(|| ctx.invalid(node.pos, field, "a long-syntax port needs target"))?;
    let target_at = format!("{field}.target");
    let container = ctx.integer(target, &target_at)?;
    let container = u16::try_from(container)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ctx.invalid(target.pos, &target_at, "not a port number"))?;
    let mut host = None;
    let mut host_ip = None;
    let mut protocol = Protocol::Tcp;
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        match entry.key.as_str() {
            "target" | "mode" | "name" | "app_protocol" => {}
            "published" => {
                let text = ctx.string(&entry.value, &at)?;
                host = Some(range(&text).ok_or_else(|| {
                    ctx.invalid(
                        entry.value.pos,
                        &at,
                        format!("{text:?} is not a port or a range"),
                    )
                })?);
            }
            "host_ip" => {
                let text = ctx.string(&entry.value, &at)?;
                host_ip = Some(text.parse().map_err(|_| {
                    ctx.invalid(
                        entry.value.pos,
                        &at,
                        format!("{text:?} is not an IP address"),
                    )
                })?);
            }
            "protocol" => {
                let text = ctx.string(&entry.value, &at)?;
                protocol = protocol_of(&text).ok_or_else(|| {
                    ctx.invalid(entry.value.pos, &at, format!("{text:?} is not tcp or udp"))
                })?;
            }
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!("{other} has no berth equivalent; ignored"),
            ),
        }
    }
    let shown = format!("target {container}");
    pair_up(
        ctx,
        &shown,
        node.pos,
        field,
        host_ip,
        host,
        (container, container),
        protocol,
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::with_ctx;
    use super::*;

    fn parse(text: &str) -> (Vec<PortMapping>, usize) {
        with_ctx(|ctx| {
            let result = short(ctx, text, Pos::default(), "ports[0]").unwrap();
            (result, ctx.warnings.len())
        })
    }

    fn port(container: u16, host: Option<u16>) -> PortMapping {
        PortMapping {
            container_port: container,
            host_port: host,
            protocol: Protocol::Tcp,
            host_ip: None,
        }
    }

    #[test]
    fn short_ports_map_host_and_container() {
        assert_eq!(parse("8080:80"), (vec![port(80, Some(8080))], 0));
        let (udp, _) = parse("127.0.0.1:5353:53/udp");
        assert_eq!(udp[0].protocol, Protocol::Udp);
        assert_eq!(udp[0].host_ip, Some("127.0.0.1".parse().unwrap()));
        let (v6, _) = parse("[::1]:6001:6001");
        assert_eq!(v6[0].host_ip, Some("::1".parse().unwrap()));
        assert_eq!(
            parse("9090-9091:8080-8081").0,
            vec![port(8080, Some(9090)), port(8081, Some(9091))]
        );
    }

    #[test]
    fn a_container_port_alone_is_published_on_the_same_port_with_a_warning() {
        assert_eq!(parse("3000"), (vec![port(3000, None)], 1));
        assert_eq!(parse("127.0.0.1::80").1, 1);
    }

    #[test]
    fn bad_ports_are_errors() {
        with_ctx(|ctx| {
            for bad in ["http", "80/sctp", "1-2:3-5", "0:80", "x:1:2"] {
                assert!(short(ctx, bad, Pos::default(), "p").is_err(), "{bad}");
            }
        });
    }
}
