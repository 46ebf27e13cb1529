//! `healthcheck:`, `restart:` (and `deploy.restart_policy`) and
//! `depends_on:` with its conditions.

use crate::manifest::quantity::Duration;
use crate::manifest::yaml::{Node, Pos, Value};
use crate::manifest::{Backoff, DependencyCondition, Healthcheck, RestartPolicy, RestartSpec};

use super::tree::Ctx;
use super::ComposeError;

/// The health check, or `None` for `disable: true`, `test: [NONE]` or a
/// check berth cannot state (warned).
pub fn healthcheck(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
) -> Result<Option<Healthcheck>, ComposeError> {
    let mut check = Healthcheck::default();
    let mut exec = None;
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        let value = &entry.value;
        match entry.key.as_str() {
            "disable" if ctx.boolean(value, &at)? => return Ok(None),
            "disable" => {}
            "test" => match test(ctx, value, &at)? {
                Some(command) => exec = Some(command),
                None => return Ok(None),
            },
            "interval" => check.interval = Some(ctx.duration(value, &at)?),
            "timeout" => check.timeout = Some(ctx.duration(value, &at)?),
            "start_period" => check.start_period = Some(ctx.duration(value, &at)?),
            "retries" => match ctx.integer(value, &at)? {
                n if n >= 1 => check.retries = Some(u32::try_from(n).unwrap_or(u32::MAX)),
                _ => ctx.warn(
                    entry.key_pos,
                    &at,
                    "berth needs at least 1 retry; its default (3) is used",
                ),
            },
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!("{other} has no berth equivalent; ignored"),
            ),
        }
    }
    if exec.is_none() {
        ctx.warn(
            node.pos,
            field,
            "no test: compose would use the image's HEALTHCHECK, which berth does not read; no health check",
        );
        return Ok(None);
    }
    check.exec = exec;
    Ok(Some(check))
}

/// `test:` as the command berth runs: `[CMD, args...]` as it is,
/// `[CMD-SHELL, script]` and a plain string through `sh -c`; `None` for
/// `[NONE]`.
fn test(ctx: &Ctx<'_>, node: &Node, field: &str) -> Result<Option<Vec<String>>, ComposeError> {
    if !matches!(node.value, Value::Seq(_)) {
        let script = ctx.string(node, field)?;
        return Ok(Some(shell(script)));
    }
    let words = ctx.strings(node, field)?;
    match words.split_first() {
        Some((first, [])) if first == "NONE" => Ok(None),
        Some((first, rest)) if first == "CMD" && !rest.is_empty() => Ok(Some(rest.to_vec())),
        Some((first, rest)) if first == "CMD-SHELL" && !rest.is_empty() => {
            Ok(Some(shell(rest.join(" "))))
        }
        _ => Err(ctx.invalid(
            node.pos,
            field,
            "a test list starts with CMD, CMD-SHELL or NONE and has a command after CMD or CMD-SHELL",
        )),
    }
}

fn shell(script: String) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script]
}

/// `restart: no | always | on-failure[:N] | unless-stopped`.
pub fn restart(ctx: &Ctx<'_>, node: &Node, field: &str) -> Result<RestartSpec, ComposeError> {
    if let Value::Bool(false) = node.value {
        return Ok(policy(RestartPolicy::Never));
    }
    let text = ctx.string(node, field)?;
    let (name, retries) = match text.split_once(':') {
        Some((name, n)) => (name, Some(n)),
        None => (text.as_str(), None),
    };
    let spec = match (name, retries) {
        ("no", None) | ("", None) => policy(RestartPolicy::Never),
        ("always", None) => policy(RestartPolicy::Always),
        ("unless-stopped", None) => policy(RestartPolicy::UnlessStopped),
        ("on-failure", None) => policy(RestartPolicy::OnFailure),
        ("on-failure", Some(n)) => RestartSpec {
            max_retries: Some(n.parse().map_err(|_| {
                ctx.invalid(node.pos, field, format!("{n:?} is not a number of retries"))
            })?),
            ..policy(RestartPolicy::OnFailure)
        },
        _ => {
            return Err(ctx.invalid(
                node.pos,
                field,
                format!("{text:?} is not one of no, always, on-failure[:N], unless-stopped"),
            ))
        }
    };
    Ok(spec)
}

pub fn policy(policy: RestartPolicy) -> RestartSpec {
    RestartSpec {
        policy,
        max_retries: None,
        backoff: None,
    }
}

/// `deploy.restart_policy: {condition, delay, max_attempts, window}`.
pub fn deploy_restart(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
) -> Result<RestartSpec, ComposeError> {
    let mut spec = policy(RestartPolicy::Always);
    let mut attempts = None;
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        let value = &entry.value;
        match entry.key.as_str() {
            "condition" => {
                spec.policy = match ctx.string(value, &at)?.as_str() {
                    "none" => RestartPolicy::Never,
                    "on-failure" => RestartPolicy::OnFailure,
                    "any" => RestartPolicy::Always,
                    other => {
                        return Err(ctx.invalid(
                            value.pos,
                            &at,
                            format!("{other:?} is not one of none, on-failure, any"),
                        ))
                    }
                }
            }
            "delay" => {
                let delay: Duration = ctx.duration(value, &at)?;
                spec.backoff = Some(Backoff {
                    initial: Some(delay),
                    ..Backoff::default()
                });
            }
            "max_attempts" => attempts = Some((ctx.integer(value, &at)?, entry.key_pos, at)),
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!("{other} has no berth equivalent; ignored"),
            ),
        }
    }
    if let Some((n, pos, at)) = attempts {
        if spec.policy == RestartPolicy::OnFailure {
            spec.max_retries = Some(u32::try_from(n.max(0)).unwrap_or(u32::MAX));
        } else {
            ctx.warn(
                pos,
                &at,
                "berth limits restarts only with on-failure; ignored",
            );
        }
    }
    Ok(spec)
}

/// One `depends_on` entry, resolved once every service is known.
#[derive(Debug, Clone)]
pub struct Dependency {
    pub service: String,
    pub condition: DependencyCondition,
    pub required: bool,
    pub pos: Pos,
    pub field: String,
}

/// `depends_on: [db]` or `depends_on: {db: {condition: service_healthy}}`.
pub fn depends_on(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
) -> Result<Vec<Dependency>, ComposeError> {
    if let Value::Seq(_) = node.value {
        return Ok(ctx
            .strings(node, field)?
            .into_iter()
            .map(|service| Dependency {
                field: format!("{field}.{service}"),
                service,
                condition: DependencyCondition::Started,
                required: true,
                pos: node.pos,
            })
            .collect());
    }
    let mut dependencies = Vec::new();
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        let mut dependency = Dependency {
            service: entry.key.clone(),
            condition: DependencyCondition::Started,
            required: true,
            pos: entry.key_pos,
            field: at.clone(),
        };
        for option in ctx.entries(&entry.value, &at)? {
            let option_at = format!("{at}.{}", option.key);
            match option.key.as_str() {
                "condition" => dependency.condition = condition(ctx, &option.value, &option_at)?,
                "required" => dependency.required = ctx.boolean(&option.value, &option_at)?,
                "restart" if ctx.boolean(&option.value, &option_at)? => ctx.warn(
                    option.key_pos,
                    &option_at,
                    "berth does not restart a dependent when its dependency is replaced; ignored",
                ),
                "restart" => {}
                other => ctx.warn(
                    option.key_pos,
                    &option_at,
                    format!("{other} has no berth equivalent; ignored"),
                ),
            }
        }
        dependencies.push(dependency);
    }
    Ok(dependencies)
}

fn condition(ctx: &Ctx<'_>, node: &Node, field: &str) -> Result<DependencyCondition, ComposeError> {
    match ctx.string(node, field)?.as_str() {
        "service_started" => Ok(DependencyCondition::Started),
        "service_healthy" => Ok(DependencyCondition::Healthy),
        "service_completed_successfully" => Ok(DependencyCondition::Completed),
        other => Err(ctx.invalid(
            node.pos,
            field,
            format!("{other:?} is not one of service_started, service_healthy, service_completed_successfully"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{node, with_ctx};
    use super::*;

    #[test]
    fn test_forms_become_exec_commands() {
        with_ctx(|ctx| {
            let cmd = node("test: [CMD, pg_isready, -U, app]\ninterval: 5s\ntimeout: 2s\nretries: 5\nstart_period: 1m30s\n");
            let check = healthcheck(ctx, &cmd, "h").unwrap().unwrap();
            assert_eq!(check.exec.unwrap(), ["pg_isready", "-U", "app"]);
            assert_eq!(check.interval.unwrap().to_string(), "5s");
            assert_eq!(check.timeout.unwrap().to_string(), "2s");
            assert_eq!(check.retries, Some(5));
            assert_eq!(check.start_period.unwrap().to_string(), "90s");
            let shell_form = node("test: [CMD-SHELL, \"curl -f http://localhost/ || exit 1\"]\n");
            assert_eq!(
                healthcheck(ctx, &shell_form, "h")
                    .unwrap()
                    .unwrap()
                    .exec
                    .unwrap(),
                ["sh", "-c", "curl -f http://localhost/ || exit 1"]
            );
            let string_form = node("test: redis-cli ping\n");
            assert_eq!(
                healthcheck(ctx, &string_form, "h")
                    .unwrap()
                    .unwrap()
                    .exec
                    .unwrap(),
                ["sh", "-c", "redis-cli ping"]
            );
            assert!(ctx.warnings.is_empty());
        });
    }

    #[test]
    fn none_and_disable_turn_the_check_off() {
        with_ctx(|ctx| {
            assert!(healthcheck(ctx, &node("test: [NONE]\n"), "h")
                .unwrap()
                .is_none());
            assert!(healthcheck(ctx, &node("disable: true\n"), "h")
                .unwrap()
                .is_none());
            assert!(healthcheck(ctx, &node("test: [BOGUS, x]\n"), "h").is_err());
            assert!(healthcheck(ctx, &node("interval: 5s\n"), "h")
                .unwrap()
                .is_none());
            assert_eq!(
                ctx.warnings.len(),
                1,
                "no test: the image's check is unknown"
            );
        });
    }

    #[test]
    fn restart_policies_map_to_berths() {
        with_ctx(|ctx| {
            let read =
                |ctx: &mut Ctx<'_>, text: &str| restart(ctx, &node(text), "restart").unwrap();
            assert_eq!(read(ctx, "\"no\"\n").policy, RestartPolicy::Never);
            assert_eq!(read(ctx, "no\n").policy, RestartPolicy::Never);
            assert_eq!(read(ctx, "always\n").policy, RestartPolicy::Always);
            assert_eq!(
                read(ctx, "unless-stopped\n").policy,
                RestartPolicy::UnlessStopped
            );
            let limited = read(ctx, "on-failure:3\n");
            assert_eq!(
                (limited.policy, limited.max_retries),
                (RestartPolicy::OnFailure, Some(3))
            );
            assert!(restart(ctx, &node("sometimes\n"), "restart").is_err());
            let deploy = deploy_restart(
                ctx,
                &node("condition: on-failure\ndelay: 5s\nmax_attempts: 2\nwindow: 2m\n"),
                "d",
            )
            .unwrap();
            assert_eq!(deploy.max_retries, Some(2));
            assert_eq!(deploy.backoff.unwrap().initial.unwrap().to_string(), "5s");
            assert_eq!(ctx.warnings.len(), 1, "window has no equivalent");
        });
    }

    #[test]
    fn depends_on_conditions_map_to_berths() {
        with_ctx(|ctx| {
            let short = depends_on(ctx, &node("[db, cache]\n"), "d").unwrap();
            assert_eq!(short.len(), 2);
            assert_eq!(short[1].condition, DependencyCondition::Started);
            let long = depends_on(
                ctx,
                &node("db: {condition: service_healthy, restart: true}\nmigrate: {condition: service_completed_successfully}\nq: {condition: service_started, required: false}\n"),
                "d",
            )
            .unwrap();
            assert_eq!(long[0].condition, DependencyCondition::Healthy);
            assert_eq!(long[1].condition, DependencyCondition::Completed);
            assert!(!long[2].required);
            assert_eq!(ctx.warnings.len(), 1, "restart: true");
        });
    }
}
