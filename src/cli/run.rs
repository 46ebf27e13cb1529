//! `berth run`: an ad-hoc container, the `ctr run` flow, never pruned by apply.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::ExitCode;

use super::progress::CliProgress;
use super::GlobalOptions;
use crate::manifest::quantity::{ByteSize, Duration as ManifestDuration};
use crate::manifest::LogDriver;
use crate::manifest::Privileged;
use crate::manifest::{
    Backoff, Capabilities, ContainerSpec, EnvVar, EnvVars, Healthcheck, HttpProbe, Logging, Mount,
    MountType, NetworkAttachment, NetworkMode, OnUnhealthy, PortMapping, ProbeScheme, Protocol,
    Resources, RestartPolicy, RestartSpec, ScalarString, TcpProbe,
};
use crate::runtime::container_dir::LogConfig;

type Duration = ManifestDuration;
use crate::engine::{CreateRequest, Engine, Origin};
use crate::image::ImageSource;
use crate::manifest::names::{check_volume_name, ContainerId};
use crate::manifest::Kind;
use crate::reconcile::conflicts::{self, Claim, Owner};
use crate::reconcile::observe;
use crate::runtime::console;
use crate::runtime::container_dir::{ContainerDir, Phase, Status};
use crate::runtime::log_reader::{Follower, Stream};
use crate::runtime::oci::OciRuntime;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container's name
    #[arg(short, long)]
    pub detach: bool,
    /// Keep standard input open and feed it to the container
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// The container's name (default: run-<random>)
    #[arg(long)]
    pub name: Option<String>,
    /// Network: none (default: loopback only), host, or a network's name (`default` is built in)
    #[arg(long, visible_alias = "network", default_value = "none")]
    pub net: String,
    /// Publish a port: [HOST_IP:]HOST_PORT:CONTAINER_PORT[/udp]
    #[arg(short, long = "publish", value_name = "[IP:]HOST:CONTAINER[/udp]")]
    pub publish: Vec<String>,
    /// Give the container all capabilities and host devices
    #[arg(long)]
    pub privileged: bool,
    /// With --privileged: only the default devices, not the host's (ctr's --privileged-without-host-devices)
    #[arg(long)]
    pub no_host_devices: bool,
    /// Set an environment variable (NAME=VALUE, or NAME to copy it from here)
    #[arg(short, long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Label the container: KEY=VALUE (or KEY, an empty value); `-l` selectors of ps, logs, stop, rm and inspect match them
    #[arg(short, long = "label", value_name = "KEY=VALUE", value_parser = super::selector::parse_label)]
    pub labels: Vec<(String, String)>,
    /// Mount a host path or named volume: SRC:DST[:ro]
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    pub volumes: Vec<String>,
    /// The user to run as: uid[:gid] or a name from the image
    #[arg(short, long)]
    pub user: Option<String>,
    /// The working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Restart policy: never (default), on-failure[:MAX_RETRIES], always, unless-stopped
    #[arg(long, default_value = "never")]
    pub restart: String,
    /// First restart delay, doubling up to --restart-max-delay (default 100ms)
    #[arg(long, value_name = "DURATION")]
    pub restart_delay: Option<Duration>,
    /// Longest restart delay (default 5m)
    #[arg(long, value_name = "DURATION")]
    pub restart_max_delay: Option<Duration>,
    /// A health check command, run with sh -c inside the container
    #[arg(long, value_name = "CMD", conflicts_with_all = ["health_http", "health_tcp"])]
    pub health_cmd: Option<String>,
    /// A health check by HTTP GET of PATH (default /) on PORT of the container: 2xx or 3xx passes
    #[arg(long, value_name = "PORT[/PATH]", conflicts_with = "health_tcp")]
    pub health_http: Option<String>,
    /// A health check by TCP connection to PORT of the container
    #[arg(long, value_name = "PORT")]
    pub health_tcp: Option<u16>,
    /// Time between health checks (with a --health-* check; default 30s)
    #[arg(long, value_name = "DURATION")]
    pub health_interval: Option<Duration>,
    /// How long one health check may take before it counts as failed (default 30s)
    #[arg(long, value_name = "DURATION")]
    pub health_timeout: Option<Duration>,
    /// Failed checks in a row that make the container unhealthy (default 3)
    #[arg(long, value_name = "N")]
    pub health_retries: Option<u32>,
    /// Time after a start during which failed checks do not count (default 0s)
    #[arg(long, value_name = "DURATION")]
    pub health_start_period: Option<Duration>,
    /// Restart the container when it becomes unhealthy
    #[arg(long)]
    pub health_restart: bool,
    /// Memory limit, such as 64Mi
    #[arg(short, long, value_name = "SIZE")]
    pub memory: Option<ByteSize>,
    /// CPU limit in CPUs, such as 0.5
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Most processes the container may have
    #[arg(long, value_name = "N")]
    pub pids_limit: Option<u32>,
    /// Add a capability (e.g. NET_ADMIN)
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability (ALL drops every one)
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// The container's hostname (default: its name)
    #[arg(long)]
    pub hostname: Option<String>,
    /// Seccomp profile: default, unconfined or a file
    #[arg(long, value_name = "PROFILE")]
    pub seccomp: Option<String>,
    /// Rotate the log file at this size (default 10Mi)
    #[arg(long, value_name = "SIZE")]
    pub log_max_size: Option<ByteSize>,
    /// Log files kept, the current one included (default 5)
    #[arg(long, value_name = "N")]
    pub log_max_files: Option<u32>,
    /// Where output goes: file (default), none, or binary:PATH (a program reading stdout on fd 3, stderr on fd 4)
    #[arg(long, value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// An argument for the binary log driver's program: arg=VALUE (repeat for more, in order)
    #[arg(long, value_name = "arg=VALUE")]
    pub log_opt: Vec<String>,
    /// Mount the root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// Run on this directory as the root filesystem instead of an image (never written: the
    /// container's writes go to its own overlay layer); the command is then required
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// The image: a registry reference or oci-layout:DIR, oci-archive:FILE, docker-archive:FILE
    /// (with --rootfs, the command's first word)
    #[arg(required_unless_present = "rootfs")]
    pub image: Option<String>,
    /// The command and its arguments (replace the image's cmd)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn random_name() -> String {
    let mut bytes = [0u8; 4];
    let _ = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    format!("run-{}", crate::state::hex::encode(&bytes))
}

fn build_spec(args: &Args) -> anyhow::Result<ContainerSpec> {
    let (network_mode, networks) = match args.net.as_str() {
        "none" => (NetworkMode::None, Vec::new()),
        "host" => (NetworkMode::Host, Vec::new()),
        name => (
            NetworkMode::Bridge,
            vec![NetworkAttachment::Name(name.to_string())],
        ),
    };
    let env: Vec<EnvVar> = args
        .env
        .iter()
        .map(|entry| match entry.split_once('=') {
            Some((name, value)) => EnvVar {
                name: name.to_string(),
                value: ScalarString(value.to_string()),
            },
            None => EnvVar {
                name: entry.clone(),
                value: ScalarString(std::env::var(entry).unwrap_or_default()),
            },
        })
        .collect();
    let mut mounts = Vec::new();
    for volume in &args.volumes {
        let parts: Vec<&str> = volume.split(':').collect();
        let (source, target, read_only) = match parts.as_slice() {
            [source, target] => (*source, *target, false),
            [source, target, "ro"] => (*source, *target, true),
            [source, target, "rw"] => (*source, *target, false),
            _ => anyhow::bail!("-v {volume}: expected SRC:DST or SRC:DST:ro"),
        };
        let kind = if source.starts_with('/') || source.starts_with('.') {
            MountType::Bind
        } else {
            check_volume_name(source).map_err(|e| anyhow::anyhow!("-v {volume}: {e}"))?;
            MountType::Volume
        };
        mounts.push(Mount {
            kind,
            source: Some(source.to_string()),
            target: target.to_string(),
            read_only,
            options: Vec::new(),
        });
    }
    let (policy_text, max_retries) = match args.restart.split_once(':') {
        Some((policy, retries)) => (
            policy,
            Some(retries.parse::<u32>().map_err(|_| {
                anyhow::anyhow!(
                    "--restart {}: the retry count is not a number",
                    args.restart
                )
            })?),
        ),
        None => (args.restart.as_str(), None),
    };
    let policy: RestartPolicy = serde_json::from_value(serde_json::Value::String(
        policy_text.to_string(),
    ))
    .map_err(|_| {
        anyhow::anyhow!(
            "--restart {}: expected never, on-failure[:N], always or unless-stopped",
            args.restart
        )
    })?;
    if max_retries.is_some() && policy != RestartPolicy::OnFailure {
        anyhow::bail!(
            "--restart {}: a retry count applies only to on-failure",
            args.restart
        );
    }
    let http = args
        .health_http
        .as_deref()
        .map(parse_health_http)
        .transpose()?;
    if args.health_tcp == Some(0) {
        anyhow::bail!("--health-tcp 0: a port is 1 to 65535");
    }
    let checked = args.health_cmd.is_some() || http.is_some() || args.health_tcp.is_some();
    let healthcheck = checked.then(|| Healthcheck {
        exec: args
            .health_cmd
            .as_ref()
            .map(|cmd| vec!["sh".into(), "-c".into(), cmd.clone()]),
        http,
        tcp: args.health_tcp.map(|port| TcpProbe { port }),
        interval: args.health_interval,
        timeout: args.health_timeout,
        retries: args.health_retries,
        start_period: args.health_start_period,
        on_unhealthy: if args.health_restart {
            OnUnhealthy::Restart
        } else {
            OnUnhealthy::None
        },
    });
    let resources = (args.memory.is_some() || args.cpus.is_some() || args.pids_limit.is_some())
        .then_some(Resources {
            memory: args.memory,
            cpus: args.cpus,
            pids: args.pids_limit,
        });
    let capabilities =
        (!args.cap_add.is_empty() || !args.cap_drop.is_empty()).then(|| Capabilities {
            add: args.cap_add.clone(),
            drop: args.cap_drop.clone(),
        });
    let (image, command) = image_and_command(args)?;
    Ok(ContainerSpec {
        image,
        args: (!command.is_empty()).then_some(command),
        env: (!env.is_empty()).then_some(EnvVars::List(env)),
        mounts,
        privileged: privileged(args)?,
        network_mode,
        networks,
        ports: args
            .publish
            .iter()
            .map(|p| parse_port(p))
            .collect::<anyhow::Result<_>>()?,
        user: args.user.clone(),
        working_dir: args.workdir.clone(),
        read_only_rootfs: args.read_only,
        no_new_privileges: true,
        restart: RestartSpec {
            policy,
            max_retries,
            backoff: (args.restart_delay.is_some() || args.restart_max_delay.is_some()).then_some(
                Backoff {
                    initial: args.restart_delay,
                    max: args.restart_max_delay,
                    reset_after: None,
                },
            ),
        },
        healthcheck,
        resources,
        capabilities,
        hostname: args.hostname.clone(),
        seccomp: args.seccomp.clone(),
        logging: logging(args)?,
        ..ContainerSpec::default()
    })
}

/// `--privileged [--no-host-devices]` as the manifest's `privileged`; the
/// device option alone is refused, as ctr refuses it, rather than ignored.
fn privileged(args: &Args) -> anyhow::Result<Privileged> {
    match (args.privileged, args.no_host_devices) {
        (false, false) => Ok(Privileged::Off),
        (true, false) => Ok(Privileged::Full),
        (true, true) => Ok(Privileged::WithoutHostDevices),
        (false, true) => anyhow::bail!(
            "--no-host-devices applies only with --privileged (an unprivileged container gets only the default devices already)"
        ),
    }
}

/// The spec's image and command: IMAGE [COMMAND...], or with `--rootfs DIR`
/// the image `rootfs:DIR` and every positional word as the command, which a
/// directory (no image config) cannot do without.
fn image_and_command(args: &Args) -> anyhow::Result<(String, Vec<String>)> {
    let Some(dir) = &args.rootfs else {
        let image = args
            .image
            .clone()
            .ok_or_else(|| anyhow::anyhow!("give an image (or --rootfs DIR)"))?;
        return Ok((image, args.command.clone()));
    };
    let command: Vec<String> = args.image.iter().chain(&args.command).cloned().collect();
    if command.is_empty() {
        anyhow::bail!(
            "--rootfs {}: a rootfs directory has no image config to take a command from: give one (berth run --rootfs DIR COMMAND...)",
            dir.display()
        );
    }
    let dir = dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("--rootfs {}: the path is not UTF-8", dir.display()))?;
    Ok((format!("rootfs:{dir}"), command))
}

/// Holds a `rootfs:DIR` to the trust rules of manifests when berth runs as
/// root: DIR and every directory above it owned by root or the invoking
/// user (`SUDO_UID`) and not group- or world-writable, symlinks on the way
/// checked where they lead. Whoever could change DIR would choose what runs.
fn check_rootfs_trust(image: &ImageSource) -> anyhow::Result<()> {
    let (Some(dir), Some(policy)) = (
        image.rootfs_dir(),
        crate::manifest::LoadOptions::for_current_user(false).trust,
    ) else {
        return Ok(());
    };
    crate::manifest::trust::check_path(policy, dir)
        .map(drop)
        .map_err(|e| {
            anyhow::anyhow!(
                "--rootfs: refusing untrusted rootfs directory {}: {e}",
                dir.display()
            )
        })
}

/// `--log-max-size` and `--log-max-files` as the manifest's `logging`,
/// held to the same bounds.
fn logging(args: &Args) -> anyhow::Result<Option<Logging>> {
    if args.log_max_size.is_none()
        && args.log_max_files.is_none()
        && args.log_driver.is_none()
        && args.log_opt.is_empty()
    {
        return Ok(None);
    }
    let (driver, path) = log_driver(args.log_driver.as_deref())?;
    let logging = Logging {
        max_size: args.log_max_size,
        max_files: args.log_max_files,
        driver,
        path,
        args: log_program_args(&args.log_opt)?,
    };
    if let Some((field, message)) = logging.problems().into_iter().next() {
        let flag = match field {
            "maxSize" => "--log-max-size",
            "maxFiles" => "--log-max-files",
            "args" => "--log-opt",
            _ => "--log-driver",
        };
        anyhow::bail!("{flag}: {message}");
    }
    if let Some(path) = logging.path.as_deref() {
        // No trust rule: the program is named by whoever runs berth, as a
        // `-v` source is, not by a file someone else may edit.
        crate::manifest::validate::check_log_program(None, std::path::Path::new(path))
            .map_err(|message| anyhow::anyhow!("--log-driver: {message}"))?;
    }
    Ok(Some(logging))
}

/// `--log-driver file|none|binary:PATH` as the manifest's driver and path.
fn log_driver(text: Option<&str>) -> anyhow::Result<(Option<LogDriver>, Option<String>)> {
    Ok(match text {
        None | Some("file") => (None, None),
        Some("none") => (Some(LogDriver::None), None),
        Some(other) => match other.strip_prefix("binary:") {
            Some(path) => (Some(LogDriver::Binary), Some(path.to_string())),
            None => anyhow::bail!("--log-driver: {other:?} is not one of file, none, binary:PATH"),
        },
    })
}

/// The binary driver's program arguments from `--log-opt arg=VALUE`.
fn log_program_args(options: &[String]) -> anyhow::Result<Vec<String>> {
    options
        .iter()
        .map(|option| match option.split_once('=') {
            Some(("arg", value)) => Ok(value.to_string()),
            _ => anyhow::bail!("--log-opt: {option:?} is not arg=VALUE (the one option there is)"),
        })
        .collect()
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    if args.tty && args.detach {
        anyhow::bail!("-t needs the foreground: a detached container has no terminal to attach to");
    }
    let engine = Engine::open(&global.paths(), global.runtime.as_deref())?
        .with_image_limits(global.image_limits())
        .with_input_limits(global.input_limits());
    let mut spec = build_spec(args)?;
    if args.tty {
        // The terminal goes away with this process; a restart would have none.
        spec.restart.policy = RestartPolicy::Never;
    }
    let id = ContainerId::parse(&args.name.clone().unwrap_or_else(random_name))?;
    let progress = CliProgress::new();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let image = ImageSource::parse(&spec.image)?.resolve_relative_to(&cwd);
    // A pull or an import may take long: before the lock, so that nobody
    // waits for it (an image in the store is found again under it).
    check_rootfs_trust(&image)?;
    if image.rootfs_dir().is_none() && engine.image_digest(&image.to_string()).is_none() {
        engine.ensure_image(&image, spec.image_pull_policy, &progress)?;
    }
    // From the name check until the record exists, no apply may plan.
    let claimed = global.writer_lock()?;
    refuse_conflicts(&engine, &id, args, &spec)?;
    let console = if args.tty {
        let paths = global.paths();
        let dir = paths.consoles();
        crate::state::nofollow::create_dir_beneath(&paths.state, &dir, 0o700)?;
        let path = dir.join(format!("{id}.sock"));
        Some((console::listen(&path)?, path))
    } else {
        None
    };
    let spec_logging = spec.logging.clone();
    let created = engine.create_with_stdin(
        CreateRequest {
            id: id.clone(),
            image,
            pull_policy: spec.image_pull_policy,
            spec,
            base_dir: cwd,
            origin: Origin::Run,
            fingerprint: None,
            stdin: args.interactive,
            ephemeral: args.rm,
            console_socket: console.as_ref().map(|(_, path)| path.clone()),
            berth_env: Vec::new(),
            log: LogConfig::of(spec_logging.as_ref()),
            labels: args.labels.iter().cloned().collect(),
        },
        &progress,
    );
    drop(claimed);
    let (_, stdin) = created?;
    if args.detach {
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    let dir = engine.dir(&id);
    let status = if let Some((listener, path)) = console {
        let status = attach_terminal(&engine, &id, &dir, &listener);
        let _ = std::fs::remove_file(path);
        status?
    } else {
        if let Some(writer) = stdin {
            feed_stdin(writer, &dir);
        }
        follow_until_exit(&engine, &id, &dir)?
    };
    tracing::debug!(container = %id, "exited");
    if args.rm {
        let _removing = global.writer_lock().map_err(|e| {
            e.context(format!(
                "container {id} exited but was not removed (berth rm {id} removes it)"
            ))
        })?;
        engine.remove(&id, true)?;
        tracing::debug!(container = %id, "removed");
    }
    if let (Some(error), None) = (&status.error, status.started_unix_ms) {
        // It never ran: say why, with docker's exit code for "could not start".
        eprintln!("berth: container {id} could not start: {error}");
        return Ok(ExitCode::from(125));
    }
    Ok(exit_code_of(&status))
}

/// Refuses a name or a host port another container holds (one a manifest
/// set declared, or another `berth run`), naming the holder.
fn refuse_conflicts(
    engine: &Engine,
    id: &ContainerId,
    args: &Args,
    spec: &ContainerSpec,
) -> anyhow::Result<()> {
    let mut wanted = vec![conflicts::name_claim(
        Kind::Container,
        id,
        &Owner::Run,
        Some(format!("berth run --name {id}")),
    )];
    if spec.network_mode == NetworkMode::Bridge {
        for (text, port) in args.publish.iter().zip(&spec.ports) {
            wanted.push(Claim {
                resource: conflicts::host_port(port),
                kind: Kind::Container,
                name: id.to_string(),
                owner: Owner::Run,
                place: Some(format!("berth run -p {text}")),
            });
        }
    }
    let found = conflicts::find(&wanted, &observe::claims(engine)?);
    if found.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    anyhow::bail!("{}", lines.join("\n"))
}

/// The exit code a shell would show: the container's, or 128 + its signal.
pub fn exit_code_of(status: &Status) -> ExitCode {
    let code = match (status.exit_code, status.signal) {
        (_, Some(signal)) => 128 + signal,
        (Some(code), None) => code,
        (None, None) => 1,
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Copies standard input into the container's stdin fifo; at end of input
/// the writer closes, which the container reads as end-of-file. Not before
/// the shim has opened the read end (it has once the container left the
/// created phase): a fifo that nobody holds open drops what it buffered.
fn feed_stdin(mut writer: std::fs::File, dir: &ContainerDir) {
    let dir = dir.clone();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut writer);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            match dir.read_status() {
                Ok(Some(status)) if status.phase != Phase::Created => break,
                Err(_) => break,
                _ => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        drop(writer);
    });
}

/// Streams the container's output until it has exited for good, forwarding
/// SIGINT, SIGTERM, SIGHUP and SIGQUIT to it.
fn follow_until_exit(engine: &Engine, id: &str, dir: &ContainerDir) -> anyhow::Result<Status> {
    let mut signals = SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        signals.add(signal);
    }
    // Blocked only now: the shim, already started, must not inherit the mask.
    signals.thread_block()?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    let mut follower = Follower::new(&engine.log_file(id), true);
    let mut polls = 0u32;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    // The shim replaces status.json (a rename) on every change: one stat
    // per poll says whether to read it again. Each poll costs CPU the
    // runtime could use while it starts the container.
    let status_path = dir.status();
    let mut seen = None;
    let shim = engine.live_shim(id);
    loop {
        for line in follower.poll() {
            let _ = match line.stream {
                Stream::Stdout => writeln!(stdout, "{}", line.text),
                Stream::Stderr => writeln!(stderr, "{}", line.text),
            };
        }
        let _ = stdout.flush();
        while let Ok(Some(info)) = signal_fd.read_signal() {
            let _ = engine.runc.kill(id, info.ssi_signo as i32);
        }
        let stamp = std::fs::metadata(&status_path)
            .ok()
            .map(|m| (m.ino(), m.mtime(), m.mtime_nsec()));
        if stamp != seen {
            seen = stamp;
            if let Some(status) = dir.read_status()? {
                if status.phase == Phase::Exited {
                    for line in follower.poll() {
                        let _ = match line.stream {
                            Stream::Stdout => writeln!(stdout, "{}", line.text),
                            Stream::Stderr => writeln!(stderr, "{}", line.text),
                        };
                    }
                    return Ok(status);
                }
            }
        }
        // A shim that died without recording the exit (every tenth poll).
        let shim_gone = polls % 10 == 0 && shim.is_none_or(|shim| !shim.lives());
        if shim_gone {
            if let Some(status) = dir.read_status()?.filter(|s| s.phase == Phase::Exited) {
                return Ok(status);
            }
            anyhow::bail!(
                "container {id}: its shim exited without recording an exit status (see {})",
                dir.shim_log().display()
            );
        }
        // Quick at first (short containers), then gentle on the CPU.
        polls += 1;
        std::thread::sleep(std::time::Duration::from_millis(match polls {
            0..200 => 1,
            200..700 => 2,
            _ => 20,
        }));
    }
}

/// Relays the container's terminal until it exits, then waits for its status.
fn attach_terminal(
    engine: &Engine,
    id: &str,
    dir: &ContainerDir,
    listener: &std::os::unix::net::UnixListener,
) -> anyhow::Result<Status> {
    let exited = || {
        dir.read_status()
            .ok()
            .flatten()
            .is_some_and(|s| s.phase == Phase::Exited)
    };
    let master = console::receive_master(listener, std::time::Duration::from_secs(60), exited);
    if let Ok(master) = master {
        let _raw = console::RawMode::enable();
        console::relay(master, &mut |signal| {
            let _ = engine.runc.kill(id, signal);
        })?;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = dir.read_status()?.filter(|s| s.phase == Phase::Exited) {
            return Ok(status);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("container {id}: its terminal closed but it has not exited");
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// `PORT[/PATH]`: an HTTP probe of PATH (default `/`) on PORT.
fn parse_health_http(text: &str) -> anyhow::Result<HttpProbe> {
    let (port, path) = match text.find('/') {
        Some(at) => (&text[..at], &text[at..]),
        None => (text, "/"),
    };
    let port =
        port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            anyhow::anyhow!("--health-http {text}: {port:?} is not a port number")
        })?;
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        anyhow::bail!("--health-http {text}: a path holds no spaces or control characters");
    }
    Ok(HttpProbe {
        path: path.to_string(),
        port,
        scheme: ProbeScheme::Http,
        headers: Default::default(),
        host: None,
    })
}

/// `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/udp]`, as docker writes it.
fn parse_port(text: &str) -> anyhow::Result<PortMapping> {
    let (ports, protocol) = match text.rsplit_once('/') {
        Some((ports, "udp")) => (ports, Protocol::Udp),
        Some((ports, "tcp")) => (ports, Protocol::Tcp),
        Some((_, other)) => anyhow::bail!("-p {text}: protocol {other:?} is not tcp or udp"),
        None => (text, Protocol::Tcp),
    };
    let parts: Vec<&str> = ports.rsplitn(3, ':').collect();
    let number = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| anyhow::anyhow!("-p {text}: {s:?} is not a port number"))
    };
    let (host_ip, host_port, container_port) = match parts.as_slice() {
        [container] => (None, None, number(container)?),
        [container, host] => (None, Some(number(host)?), number(container)?),
        [container, host, ip] => (
            Some(
                ip.parse()
                    .map_err(|_| anyhow::anyhow!("-p {text}: {ip:?} is not an IP address"))?,
            ),
            Some(number(host)?),
            number(container)?,
        ),
        _ => anyhow::bail!("-p {text}: expected [IP:]HOST:CONTAINER"),
    };
    Ok(PortMapping {
        container_port,
        host_port,
        protocol,
        host_ip,
    })
}
