//! Limits (`mem_limit`, `cpus`, `pids_limit`, `deploy.resources.limits`),
//! the rest of `deploy`, and `logging`.

use crate::manifest::quantity::ByteSize;
use crate::manifest::yaml::Node;
use crate::manifest::{ContainerSpec, LogDriver, Logging, Resources};

use super::health;
use super::tree::Ctx;
use super::ComposeError;

pub fn resources(spec: &mut ContainerSpec) -> &mut Resources {
    spec.resources.get_or_insert_with(Resources::default)
}

pub fn memory(ctx: &Ctx<'_>, node: &Node, field: &str) -> Result<ByteSize, ComposeError> {
    ctx.bytes(node, field).map(ByteSize)
}

pub fn cpus(ctx: &Ctx<'_>, node: &Node, field: &str) -> Result<Option<f64>, ComposeError> {
    let cpus = ctx.float(node, field)?;
    // 0 means no limit in compose.
    Ok((cpus > 0.0).then_some(cpus))
}

pub fn pids(ctx: &Ctx<'_>, node: &Node, field: &str) -> Result<Option<u32>, ComposeError> {
    let pids = ctx.integer(node, field)?;
    // 0 and -1 mean no limit in compose.
    Ok(u32::try_from(pids).ok().filter(|p| *p > 0))
}

/// `deploy:`: simple limits, the restart policy and one replica carry
/// over; the rest is swarm's and warned about.
pub fn deploy(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
    spec: &mut ContainerSpec,
) -> Result<(), ComposeError> {
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        let value = &entry.value;
        match entry.key.as_str() {
            "resources" => deploy_resources(ctx, value, &at, spec)?,
            "restart_policy" => spec.restart = health::deploy_restart(ctx, value, &at)?,
            "replicas" if ctx.integer(value, &at)? == 1 => {}
            "replicas" => ctx.warn(
                entry.key_pos,
                &at,
                "berth runs one container per Container object: one replica is converted (copy the Container under other names for more)",
            ),
            other => ctx.warn(entry.key_pos, &at, format!("deploy.{other} is swarm's; berth has no equivalent; ignored")),
        }
    }
    Ok(())
}

fn deploy_resources(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
    spec: &mut ContainerSpec,
) -> Result<(), ComposeError> {
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        match entry.key.as_str() {
            "limits" => {
                for limit in ctx.entries(&entry.value, &at)? {
                    let limit_at = format!("{at}.{}", limit.key);
                    match limit.key.as_str() {
                        "memory" => {
                            resources(spec).memory = Some(memory(ctx, &limit.value, &limit_at)?)
                        }
                        "cpus" => resources(spec).cpus = cpus(ctx, &limit.value, &limit_at)?,
                        "pids" => resources(spec).pids = pids(ctx, &limit.value, &limit_at)?,
                        other => ctx.warn(
                            limit.key_pos,
                            &limit_at,
                            format!("limit {other} has no berth equivalent; ignored"),
                        ),
                    }
                }
            }
            "reservations" => ctx.warn(
                entry.key_pos,
                &at,
                "berth sets limits only; reservations (and devices such as GPUs) are ignored",
            ),
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!("{other} has no berth equivalent; ignored"),
            ),
        }
    }
    Ok(())
}

/// `logging: {driver, options: {max-size, max-file}}`: json-file and local
/// rotate as berth's file driver does; none discards; other drivers are warned.
pub fn logging(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
) -> Result<Option<Logging>, ComposeError> {
    let mut logging = Logging::default();
    let mut driver = "json-file".to_string();
    let mut options = None;
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        match entry.key.as_str() {
            "driver" => driver = ctx.string(&entry.value, &at)?,
            "options" => options = Some((&entry.value, at)),
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!("{other} has no berth equivalent; ignored"),
            ),
        }
    }
    match driver.as_str() {
        "json-file" | "local" => {}
        "none" => {
            logging.driver = Some(LogDriver::None);
            return Ok(Some(logging));
        }
        other => {
            ctx.warn(
                node.pos,
                field,
                format!("berth has no {other} log driver; the output goes to berth's log files"),
            );
            return Ok(None);
        }
    }
    let Some((options, at)) = options else {
        return Ok(None);
    };
    for entry in ctx.entries(options, &at)? {
        let option_at = format!("{at}.{}", entry.key);
        match entry.key.as_str() {
            "max-size" => logging.max_size = Some(memory(ctx, &entry.value, &option_at)?),
            "max-file" => {
                let files = ctx.integer(&entry.value, &option_at)?;
                logging.max_files = Some(u32::try_from(files.max(1)).unwrap_or(u32::MAX));
            }
            other => ctx.warn(
                entry.key_pos,
                &option_at,
                format!("log option {other} has no berth equivalent; ignored"),
            ),
        }
    }
    Ok((logging != Logging::default()).then_some(logging))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{node, with_ctx};
    use super::*;

    #[test]
    fn simple_deploy_limits_carry_over_and_the_rest_is_warned() {
        with_ctx(|ctx| {
            let mut spec = ContainerSpec::default();
            let deploy_node = node("replicas: 2\nresources:\n  limits: {cpus: '0.5', memory: 256M, pids: 100}\n  reservations: {memory: 128M}\nplacement: {constraints: [node.role==manager]}\n");
            deploy(ctx, &deploy_node, "deploy", &mut spec).unwrap();
            let limits = spec.resources.unwrap();
            assert_eq!(limits.cpus, Some(0.5));
            assert_eq!(limits.memory, Some(ByteSize(256 << 20)));
            assert_eq!(limits.pids, Some(100));
            assert_eq!(ctx.warnings.len(), 3, "{:?}", ctx.warnings);
        });
    }

    #[test]
    fn json_file_rotation_becomes_berths_and_other_drivers_are_warned() {
        with_ctx(|ctx| {
            let rotated = logging(
                ctx,
                &node("driver: json-file\noptions: {max-size: 10m, max-file: \"3\"}\n"),
                "l",
            )
            .unwrap()
            .unwrap();
            assert_eq!(rotated.max_size, Some(ByteSize(10 << 20)));
            assert_eq!(rotated.max_files, Some(3));
            let none = logging(ctx, &node("driver: none\n"), "l").unwrap().unwrap();
            assert_eq!(none.driver, Some(LogDriver::None));
            assert!(logging(ctx, &node("driver: syslog\n"), "l")
                .unwrap()
                .is_none());
            assert_eq!(ctx.warnings.len(), 1);
        });
    }
}
