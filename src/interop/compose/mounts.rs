//! `volumes:` of a service (short `SOURCE:TARGET[:MODE]` and long syntax)
//! and `tmpfs:`, as berth mounts.

use crate::manifest::yaml::{Node, Pos, Value};
use crate::manifest::{Mount, MountType};

use super::networks::Volumes;
use super::tree::{get, Ctx};
use super::ComposeError;

pub fn volumes(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
    service: &str,
    volumes: &mut Volumes,
) -> Result<Vec<Mount>, ComposeError> {
    let Value::Seq(items) = &node.value else {
        return Err(ctx.invalid(node.pos, field, "expected a list"));
    };
    let mut mounts = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let mount = match &item.value {
            Value::Map(_) => long(ctx, item, &at, service, volumes)?,
            _ => {
                let text = ctx.string(item, &at)?;
                Some(short(ctx, &text, item.pos, &at, service, volumes)?)
            }
        };
        mounts.extend(mount);
    }
    Ok(mounts)
}

/// Whether a volume source is a host path (compose's rule: it starts with
/// `/`, `.` or `~`); otherwise it names a volume.
fn is_host_path(source: &str) -> bool {
    source.starts_with(['/', '.', '~'])
}

fn short(
    ctx: &mut Ctx<'_>,
    text: &str,
    pos: Pos,
    field: &str,
    service: &str,
    volumes: &mut Volumes,
) -> Result<Mount, ComposeError> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, ""),
        [source, target] => (Some(*source), *target, ""),
        [source, target, mode] => (Some(*source), *target, *mode),
        _ => {
            return Err(ctx.invalid(
                pos,
                field,
                format!("volume {text:?} is not SOURCE:TARGET[:MODE]"),
            ))
        }
    };
    let mut mount = Mount {
        kind: MountType::Volume,
        source: None,
        target: target.to_string(),
        read_only: false,
        options: Vec::new(),
    };
    check_target(ctx, &mount.target, pos, field)?;
    for flag in mode.split(',').filter(|f| !f.is_empty()) {
        match flag {
            "ro" => mount.read_only = true,
            "rw" | "cached" | "delegated" | "consistent" | "nocopy" => {}
            "z" | "Z" => ctx.warn(
                pos,
                field,
                format!("{flag}: berth does not relabel for SELinux"),
            ),
            other => ctx.warn(
                pos,
                field,
                format!("mount mode {other} has no berth equivalent; ignored"),
            ),
        }
    }
    match source {
        Some(source) if is_host_path(source) => {
            mount.kind = MountType::Bind;
            mount.source = Some(ctx.host_path(source));
        }
        Some(source) => mount.source = Some(named_volume(ctx, source, pos, field, volumes)?),
        None => {
            let name = volumes.anonymous(ctx, service, target, pos.line);
            ctx.warn(pos, field, format!("anonymous volume at {target}: becomes the Volume {name} (compose keeps anonymous volumes across `up` too)"));
            mount.source = Some(name);
        }
    }
    Ok(mount)
}

fn named_volume(
    ctx: &Ctx<'_>,
    source: &str,
    pos: Pos,
    field: &str,
    volumes: &Volumes,
) -> Result<String, ComposeError> {
    volumes.reference(source).ok_or_else(|| {
        ctx.invalid(
            pos,
            field,
            format!("volume {source:?} is not declared under the top-level volumes:"),
        )
    })
}

fn check_target(ctx: &Ctx<'_>, target: &str, pos: Pos, field: &str) -> Result<(), ComposeError> {
    if target.starts_with('/') {
        Ok(())
    } else {
        Err(ctx.invalid(
            pos,
            field,
            format!("mount target {target:?} is not an absolute path"),
        ))
    }
}

/// `{type, source, target, read_only, bind, volume, tmpfs}`; `None` for a
/// type berth has no mount for (warned).
fn long(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
    service: &str,
    volumes: &mut Volumes,
) -> Result<Option<Mount>, ComposeError> {
    let kind_text = match get(node, "type") {
        Some(kind) => ctx.string(kind, &format!("{field}.type"))?,
        None => return Err(ctx.invalid(node.pos, field, "a long-syntax volume needs type")),
    };
    let kind = match kind_text.as_str() {
        "bind" => MountType::Bind,
        "volume" => MountType::Volume,
        "tmpfs" => MountType::Tmpfs,
        other => {
            ctx.warn(
                node.pos,
                field,
                format!("berth has no {other} mounts; left out"),
            );
            return Ok(None);
        }
    };
    let target_node = get(node, "target")
        .ok_or_else(|| ctx.invalid(node.pos, field, "a long-syntax volume needs target"))?;
    let target = ctx.string(target_node, &format!("{field}.target"))?;
    check_target(ctx, &target, target_node.pos, field)?;
    let mut mount = Mount {
        kind,
        source: None,
        target: target.clone(),
        read_only: false,
        options: Vec::new(),
    };
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        let value = &entry.value;
        match entry.key.as_str() {
            "type" | "target" | "consistency" => {}
            "source" => {
                let source = ctx.string(value, &at)?;
                mount.source = Some(match kind {
                    MountType::Bind => ctx.host_path(&source),
                    MountType::Volume => named_volume(ctx, &source, value.pos, &at, volumes)?,
                    MountType::Tmpfs => continue,
                });
            }
            "read_only" => mount.read_only = ctx.boolean(value, &at)?,
            "bind" => bind_options(ctx, value, &at)?,
            "volume" => volume_options(ctx, value, &at)?,
            "tmpfs" => tmpfs_options(ctx, value, &at, &mut mount.options)?,
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!("{other} has no berth equivalent; ignored"),
            ),
        }
    }
    if kind == MountType::Volume && mount.source.is_none() {
        let name = volumes.anonymous(ctx, service, &target, node.pos.line);
        ctx.warn(node.pos, field, format!("anonymous volume at {target}: becomes the Volume {name} (compose keeps anonymous volumes across `up` too)"));
        mount.source = Some(name);
    }
    if kind == MountType::Bind && mount.source.is_none() {
        return Err(ctx.invalid(node.pos, field, "a bind mount needs source"));
    }
    Ok(Some(mount))
}

fn bind_options(ctx: &mut Ctx<'_>, node: &Node, field: &str) -> Result<(), ComposeError> {
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        match entry.key.as_str() {
            "create_host_path" => {}
            "propagation" if super::tree::text(&entry.value).as_deref() == Some("rprivate") => {}
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!("bind option {other} has no berth equivalent; ignored"),
            ),
        }
    }
    Ok(())
}

fn volume_options(ctx: &mut Ctx<'_>, node: &Node, field: &str) -> Result<(), ComposeError> {
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        match entry.key.as_str() {
            "nocopy" => {}
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!(
                    "volume option {other} has no berth equivalent; the whole volume is mounted"
                ),
            ),
        }
    }
    Ok(())
}

fn tmpfs_options(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
    options: &mut Vec<String>,
) -> Result<(), ComposeError> {
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        match entry.key.as_str() {
            "size" => options.push(format!("size={}", ctx.bytes(&entry.value, &at)?)),
            "mode" => {
                // YAML reads 1777 as a decimal number; docker means octal digits.
                let mode = ctx.string(&entry.value, &at)?;
                options.push(format!("mode={mode}"));
            }
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!("tmpfs option {other} has no berth equivalent; ignored"),
            ),
        }
    }
    Ok(())
}

/// `tmpfs: /run` or `tmpfs: [/run, "/cache:size=64m,mode=1777"]`.
pub fn tmpfs(ctx: &mut Ctx<'_>, node: &Node, field: &str) -> Result<Vec<Mount>, ComposeError> {
    let mut mounts = Vec::new();
    for text in ctx.strings(node, field)? {
        let (target, options) = match text.split_once(':') {
            Some((target, options)) => (target, options.split(',').map(str::to_string).collect()),
            None => (text.as_str(), Vec::new()),
        };
        check_target(ctx, target, node.pos, field)?;
        mounts.push(Mount {
            kind: MountType::Tmpfs,
            source: None,
            target: target.to_string(),
            read_only: false,
            options,
        });
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{node, with_ctx};
    use super::*;

    #[test]
    fn short_volumes_are_binds_named_volumes_or_anonymous_ones() {
        with_ctx(|ctx| {
            let declared = node("data: {}\n");
            let mut vols = Volumes::read(ctx, Some(&declared)).unwrap();
            let list = node(
                "- ./conf:/etc/app:ro\n- data:/var/lib/data\n- /scratch\n- /srv/www:/www:rw,z\n",
            );
            let mounts = volumes(ctx, &list, "services.web.volumes", "web", &mut vols).unwrap();
            assert_eq!(mounts[0].kind, MountType::Bind);
            assert_eq!(mounts[0].source.as_deref(), Some("./conf"));
            assert!(mounts[0].read_only);
            assert_eq!(mounts[1].kind, MountType::Volume);
            assert_eq!(mounts[1].source.as_deref(), Some("test-data"));
            assert_eq!(mounts[2].source.as_deref(), Some("test-web-scratch"));
            assert_eq!(mounts[3].source.as_deref(), Some("/srv/www"));
            // anonymous volume and SELinux relabel
            assert_eq!(ctx.warnings.len(), 2, "{:?}", ctx.warnings);
            let undeclared = node("- cache:/cache\n");
            assert!(volumes(ctx, &undeclared, "v", "web", &mut vols).is_err());
        });
    }

    #[test]
    fn long_volumes_and_tmpfs_carry_their_options() {
        with_ctx(|ctx| {
            let mut vols = Volumes::read(ctx, None).unwrap();
            let list = node("- {type: bind, source: ./site, target: /usr/share/nginx/html, read_only: true}\n- {type: tmpfs, target: /run, tmpfs: {size: 64m, mode: 1777}}\n- {type: npipe, source: x, target: /x}\n");
            let mounts = volumes(ctx, &list, "v", "web", &mut vols).unwrap();
            assert_eq!(mounts.len(), 2);
            assert!(mounts[0].read_only);
            assert_eq!(mounts[1].options, ["size=67108864", "mode=1777"]);
            assert_eq!(ctx.warnings.len(), 1);
            let short = tmpfs(ctx, &node("[/tmp, \"/cache:size=1m,uid=1000\"]\n"), "t").unwrap();
            assert_eq!(short[1].target, "/cache");
            assert_eq!(short[1].options, ["size=1m", "uid=1000"]);
        });
    }
}
