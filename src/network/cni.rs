//! berth's CNI invoker: runs plugin binaries as the CNI spec (1.0) says.
//!
//! Lifecycle: [`Invoker::add`] runs ADD through a list's plugins in order,
//! each getting the previous plugin's result as `prevResult`; the last result
//! is the list's result, which the caller must keep. [`Invoker::del`] runs DEL
//! through the plugins in reverse order with that cached result as
//! `prevResult` (none when the ADD never finished). [`Invoker::check`] runs
//! CHECK in order with the cached result, unless the list sets
//! `disableCheck`.
//!
//! Each plugin gets its own configuration on stdin: the plugin object from
//! the list plus `name` and `cniVersion` from the list, `prevResult`, and a
//! `runtimeConfig` holding the capability arguments (`portMappings`, `ips`,
//! ...) that the plugin declares in its `capabilities`.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A CNI operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Del,
    Check,
    Version,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "ADD",
            Op::Del => "DEL",
            Op::Check => "CHECK",
            Op::Version => "VERSION",
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The per-attachment runtime inputs of an operation; stored with the cached
/// result so that DEL and CHECK get exactly what ADD got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConf {
    /// CNI_CONTAINERID: unique per container.
    pub container_id: String,
    /// CNI_NETNS: the pinned netns path; `None` (an empty CNI_NETNS) for a
    /// DEL whose namespace is gone.
    pub netns: Option<PathBuf>,
    /// CNI_IFNAME: eth0, eth1, ...
    pub ifname: String,
    /// CNI_ARGS key=value pairs (joined with `;`).
    #[serde(default)]
    pub args: Vec<(String, String)>,
    /// Capability arguments, passed as `runtimeConfig` to plugins that
    /// declare the capability (`portMappings`, `ips`, ...).
    #[serde(default)]
    pub capability_args: Map<String, Value>,
}

/// The `{code, msg, details}` error a plugin prints on failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginError {
    pub code: u32,
    #[serde(default)]
    pub msg: String,
    #[serde(default)]
    pub details: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("CNI plugin {plugin:?} not found in {}", display_path(.search))]
    NotFound {
        plugin: String,
        search: Vec<PathBuf>,
    },
    #[error("cannot run CNI plugin {plugin} ({path}): {source}")]
    Spawn {
        plugin: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CNI plugin {plugin} {op} failed with code {}: {}{}", .error.code, .error.msg, details(&.error.details))]
    Plugin {
        plugin: String,
        op: Op,
        error: PluginError,
    },
    #[error("CNI plugin {plugin} {op} exited with {status}: {stderr}")]
    Exit {
        plugin: String,
        op: Op,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("CNI plugin {plugin} {op} printed a result that is not JSON: {source}")]
    BadOutput {
        plugin: String,
        op: Op,
        source: serde_json::Error,
    },
    #[error("CNI network list: {0}")]
    BadList(String),
    #[error("stopped after CNI plugin {plugin} ADD: {source}")]
    Interrupted {
        plugin: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl CniError {
    /// The plugin's CNI error code, when it reported one.
    pub fn code(&self) -> Option<u32> {
        match self {
            CniError::Plugin { error, .. } => Some(error.code),
            _ => None,
        }
    }
}

fn details(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(" ({d})")
    }
}

fn display_path(path: &[PathBuf]) -> String {
    let parts: Vec<_> = path.iter().map(|p| p.display().to_string()).collect();
    parts.join(":")
}

/// Runs CNI plugins found on a search path.
#[derive(Debug, Clone)]
pub struct Invoker {
    /// Directories searched for plugin binaries, in order; also CNI_PATH.
    pub path: Vec<PathBuf>,
    /// A descriptor every plugin process inherits; see [`Invoker::inheriting`].
    inherit: Option<RawFd>,
}

impl Default for Invoker {
    fn default() -> Self {
        Invoker::new(
            super::DEFAULT_PLUGIN_PATH
                .iter()
                .map(PathBuf::from)
                .collect(),
        )
    }
}

fn plugins(list: &Value) -> Result<&Vec<Value>, CniError> {
    list.get("plugins")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| CniError::BadList("no \"plugins\" array".into()))
}

fn plugin_type(plugin: &Value) -> Result<&str, CniError> {
    plugin
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| CniError::BadList("a plugin has no \"type\"".into()))
}

/// The configuration one plugin gets on stdin (CNI spec, "Deriving
/// execution configuration from plugin configuration").
pub fn plugin_config(
    list: &Value,
    plugin: &Value,
    rt: &RuntimeConf,
    prev_result: Option<&Value>,
) -> Result<Value, CniError> {
    let mut config = plugin
        .as_object()
        .cloned()
        .ok_or_else(|| CniError::BadList("a plugin is not an object".into()))?;
    for key in ["name", "cniVersion"] {
        let value = list
            .get(key)
            .cloned()
            .ok_or_else(|| CniError::BadList(format!("no \"{key}\"")))?;
        config.insert(key.into(), value);
    }
    if let Some(prev) = prev_result {
        config.insert("prevResult".into(), prev.clone());
    }
    let mut runtime = Map::new();
    if let Some(caps) = plugin.get("capabilities").and_then(Value::as_object) {
        for (cap, enabled) in caps {
            if enabled == &Value::Bool(true) {
                if let Some(arg) = rt.capability_args.get(cap) {
                    runtime.insert(cap.clone(), arg.clone());
                }
            }
        }
    }
    if !runtime.is_empty() {
        config.insert("runtimeConfig".into(), Value::Object(runtime));
    }
    Ok(Value::Object(config))
}

impl Invoker {
    pub fn new(path: Vec<PathBuf>) -> Invoker {
        Invoker {
            path,
            inherit: None,
        }
    }

    /// Plugins run by this invoker inherit `fd`, which the caller keeps
    /// open while it uses the invoker. Given a container's lock, a plugin
    /// that outlives a killed berth holds the lock until it exits, so the
    /// next berth cannot DEL while an orphaned ADD is still adding.
    pub fn inheriting(mut self, fd: RawFd) -> Invoker {
        self.inherit = Some(fd);
        self
    }

    /// The plugin binary named `plugin` on the search path.
    pub fn find(&self, plugin: &str) -> Result<PathBuf, CniError> {
        let not_found = || CniError::NotFound {
            plugin: plugin.to_string(),
            search: self.path.clone(),
        };
        if plugin.is_empty() || plugin.contains('/') || plugin.starts_with('.') {
            return Err(not_found());
        }
        self.path
            .iter()
            .map(|dir| dir.join(plugin))
            .find(|p| is_executable(p))
            .ok_or_else(not_found)
    }

    /// Runs one plugin once; returns its parsed stdout (`None` when empty,
    /// as for DEL).
    pub fn exec(
        &self,
        plugin: &str,
        op: Op,
        rt: &RuntimeConf,
        stdin: &Value,
    ) -> Result<Option<Value>, CniError> {
        let binary = self.find(plugin)?;
        let args: Vec<String> = rt.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let cni_path = std::env::join_paths(&self.path).unwrap_or_else(|_| OsString::new());
        let mut command = Command::new(&binary);
        if let Some(fd) = self.inherit {
            crate::state::lock::share_with_child(&mut command, fd);
        }
        let mut child = command
            .env("CNI_COMMAND", op.as_str())
            .env("CNI_CONTAINERID", &rt.container_id)
            .env(
                "CNI_NETNS",
                rt.netns.as_deref().map(Path::as_os_str).unwrap_or_default(),
            )
            .env("CNI_IFNAME", &rt.ifname)
            .env("CNI_ARGS", args.join(";"))
            .env("CNI_PATH", cni_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CniError::Spawn {
                plugin: plugin.to_string(),
                path: binary.clone(),
                source,
            })?;
        let input = serde_json::to_vec(stdin).expect("a JSON value serializes");
        if let Some(mut pipe) = child.stdin.take() {
            // A plugin may exit without reading stdin (VERSION); ignore EPIPE.
            let _ = pipe.write_all(&input);
        }
        let output = child.wait_with_output().map_err(|source| CniError::Spawn {
            plugin: plugin.to_string(),
            path: binary.clone(),
            source,
        })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            if let Ok(error) = serde_json::from_str::<PluginError>(stdout.trim()) {
                return Err(CniError::Plugin {
                    plugin: plugin.to_string(),
                    op,
                    error,
                });
            }
            let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            if stderr.is_empty() {
                stderr = stdout.trim().to_string();
            }
            return Err(CniError::Exit {
                plugin: plugin.to_string(),
                op,
                status: output.status,
                stderr,
            });
        }
        if stdout.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(stdout.trim())
            .map(Some)
            .map_err(|source| CniError::BadOutput {
                plugin: plugin.to_string(),
                op,
                source,
            })
    }

    /// ADD through the list; returns the last plugin's result.
    pub fn add(&self, list: &Value, rt: &RuntimeConf) -> Result<Value, CniError> {
        self.add_with(list, rt, |_| Ok(()))
    }

    /// ADD through the list, calling `after_each` with each plugin's result
    /// before the next plugin runs (so a caller can persist the partial
    /// result: a DEL after a crash mid-chain then still has the addresses
    /// that e.g. the firewall plugin needs to find its rules). An error from
    /// `after_each` stops the chain.
    pub fn add_with<F>(
        &self,
        list: &Value,
        rt: &RuntimeConf,
        mut after_each: F,
    ) -> Result<Value, CniError>
    where
        F: FnMut(&Value) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut prev: Option<Value> = None;
        for plugin in plugins(list)? {
            let kind = plugin_type(plugin)?;
            let config = plugin_config(list, plugin, rt, prev.as_ref())?;
            let result = self.exec(kind, Op::Add, rt, &config)?;
            // A plugin that prints nothing passes the previous result on.
            if result.is_some() {
                prev = result;
            }
            if let Some(partial) = &prev {
                after_each(partial).map_err(|source| CniError::Interrupted {
                    plugin: kind.to_string(),
                    source,
                })?;
            }
        }
        prev.ok_or_else(|| CniError::BadList("no plugin printed a result".into()))
    }

    /// DEL through the list in reverse order. Every plugin runs even when an
    /// earlier one fails (so one broken plugin does not leak the others'
    /// resources); the first error is returned.
    pub fn del(
        &self,
        list: &Value,
        rt: &RuntimeConf,
        cached: Option<&Value>,
    ) -> Result<(), CniError> {
        let mut first_error = None;
        for plugin in plugins(list)?.iter().rev() {
            let outcome = plugin_type(plugin)
                .and_then(|kind| Ok((kind, plugin_config(list, plugin, rt, cached)?)))
                .and_then(|(kind, config)| self.exec(kind, Op::Del, rt, &config));
            if let Err(error) = outcome {
                // The caller retries and reports what persists; one failure is no news.
                tracing::debug!(%error, container = %rt.container_id, "CNI DEL");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// CHECK through the list with the cached result. Lists with
    /// `disableCheck: true` pass without running anything.
    pub fn check(&self, list: &Value, rt: &RuntimeConf, cached: &Value) -> Result<(), CniError> {
        if list.get("disableCheck") == Some(&Value::Bool(true)) {
            return Ok(());
        }
        for plugin in plugins(list)? {
            let kind = plugin_type(plugin)?;
            if kind == "portmap" && !has_ipv6_address(cached) {
                // portmap's CHECK also demands ip6tables chains it never makes
                // for an IPv4-only container (containernetworking/plugins#819):
                // it would fail every healthy attachment.
                continue;
            }
            let config = plugin_config(list, plugin, rt, Some(cached))?;
            self.exec(kind, Op::Check, rt, &config)?;
        }
        Ok(())
    }

    /// VERSION of one plugin: its `supportedVersions` report.
    pub fn version(&self, plugin: &str) -> Result<Value, CniError> {
        let stdin = serde_json::json!({"cniVersion": super::CNI_VERSION});
        let rt = RuntimeConf::default();
        self.exec(plugin, Op::Version, &rt, &stdin)?
            .ok_or_else(|| CniError::BadList(format!("{plugin} VERSION printed nothing")))
    }
}

/// Whether a CNI result assigned any IPv6 address.
fn has_ipv6_address(result: &Value) -> bool {
    result["ips"].as_array().is_some_and(|ips| {
        ips.iter()
            .any(|ip| ip["address"].as_str().is_some_and(|a| a.contains(':')))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use serde_json::json;

    use super::*;

    /// A fake plugin: appends its CNI environment and stdin to `log`, one
    /// JSON line per call, and prints `result` (ADD), or fails with an error
    /// JSON when CNI_ARGS contains FAIL=1.
    fn fake_plugin(dir: &Path, name: &str, log: &Path) {
        let script = format!(
            r#"#!/bin/sh
input=$(cat)
printf '{{"plugin":"{name}","cmd":"%s","id":"%s","netns":"%s","ifname":"%s","args":"%s","path":"%s","stdin":%s}}\n' \
  "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH" "$input" >> {log}
case "$CNI_ARGS" in *FAIL={name}*)
  echo '{{"cniVersion":"1.0.0","code":7,"msg":"no way","details":"fake"}}'; exit 1;;
esac
case "$CNI_ARGS" in *GARBAGE={name}*)
  echo 'boom' >&2; exit 3;;
esac
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{{"cniVersion":"1.0.0","interfaces":[{{"name":"'"$CNI_IFNAME"'","sandbox":"'"$CNI_NETNS"'"}}],"ips":[{{"address":"10.9.0.2/24","interface":0}}],"dns":{{}},"by":"{name}"}}'
fi
"#,
            log = log.display()
        );
        let path = dir.join(name);
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn calls(log: &Path) -> Vec<Value> {
        fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn setup() -> (tempfile::TempDir, Invoker, PathBuf, Value, RuntimeConf) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        fake_plugin(&bin, "one", &log);
        fake_plugin(&bin, "two", &log);
        let invoker = Invoker::new(vec![dir.path().join("missing"), bin]);
        let list = json!({
            "cniVersion": "1.0.0",
            "name": "net1",
            "plugins": [
                {"type": "one", "ipam": {"type": "x"}},
                {"type": "two", "capabilities": {"portMappings": true, "ips": false}}
            ]
        });
        let mut caps = Map::new();
        caps.insert(
            "portMappings".into(),
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
        );
        caps.insert("ips".into(), json!(["10.9.0.9/24"]));
        let rt = RuntimeConf {
            container_id: "c1".into(),
            netns: Some("/run/netns/c1".into()),
            ifname: "eth0".into(),
            args: vec![
                ("IgnoreUnknown".into(), "1".into()),
                ("IP".into(), "10.9.0.9".into()),
            ],
            capability_args: caps,
        };
        (dir, invoker, log, list, rt)
    }

    #[test]
    fn plugins_inherit_the_descriptor_they_are_given_and_no_other() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let lock = fs::File::create(dir.path().join("c1.lock")).unwrap();
        let other = fs::File::create(dir.path().join("other")).unwrap();
        let plugin = dir.path().join("probe");
        fs::write(
            &plugin,
            format!(
                "#!/bin/sh\nreadlink /proc/self/fd/{} /proc/self/fd/{} > {}\nexit 0\n",
                lock.as_raw_fd(),
                other.as_raw_fd(),
                dir.path().join("seen").display()
            ),
        )
        .unwrap();
        fs::set_permissions(&plugin, fs::Permissions::from_mode(0o755)).unwrap();
        let invoker = Invoker::new(vec![dir.path().to_path_buf()]).inheriting(lock.as_raw_fd());
        invoker
            .exec("probe", Op::Del, &RuntimeConf::default(), &json!({}))
            .unwrap();
        let seen = fs::read_to_string(dir.path().join("seen")).unwrap();
        assert_eq!(
            seen.trim(),
            dir.path().join("c1.lock").display().to_string()
        );
    }

    #[test]
    fn add_chains_prev_result_and_passes_cni_environment() {
        let (_dir, invoker, log, list, rt) = setup();
        let result = invoker.add(&list, &rt).unwrap();
        assert_eq!(result["by"], "two");
        let calls = calls(&log);
        assert_eq!(calls.len(), 2);
        let (one, two) = (&calls[0], &calls[1]);
        assert_eq!(one["plugin"], "one");
        assert_eq!(one["cmd"], "ADD");
        assert_eq!(one["id"], "c1");
        assert_eq!(one["netns"], "/run/netns/c1");
        assert_eq!(one["ifname"], "eth0");
        assert_eq!(one["args"], "IgnoreUnknown=1;IP=10.9.0.9");
        assert!(one["path"].as_str().unwrap().ends_with("/bin"));
        assert_eq!(one["stdin"]["name"], "net1");
        assert_eq!(one["stdin"]["cniVersion"], "1.0.0");
        assert!(one["stdin"].get("prevResult").is_none());
        assert!(one["stdin"].get("runtimeConfig").is_none());
        assert_eq!(two["stdin"]["prevResult"]["by"], "one");
        assert_eq!(
            two["stdin"]["runtimeConfig"]["portMappings"][0]["hostPort"],
            8080
        );
        // `ips` is declared false: not passed.
        assert!(two["stdin"]["runtimeConfig"].get("ips").is_none());
    }

    #[test]
    fn del_runs_in_reverse_with_the_cached_result_and_an_empty_netns() {
        let (_dir, invoker, log, list, mut rt) = setup();
        let cached = invoker.add(&list, &rt).unwrap();
        rt.netns = None;
        invoker.del(&list, &rt, Some(&cached)).unwrap();
        let calls = calls(&log);
        let dels: Vec<_> = calls.iter().filter(|c| c["cmd"] == "DEL").collect();
        assert_eq!(dels.len(), 2);
        assert_eq!(dels[0]["plugin"], "two");
        assert_eq!(dels[1]["plugin"], "one");
        for del in dels {
            assert_eq!(del["stdin"]["prevResult"], cached);
            assert_eq!(del["netns"], "");
            assert_eq!(del["id"], "c1");
        }
    }

    #[test]
    fn check_passes_the_cached_result_unless_disabled() {
        let (_dir, invoker, log, mut list, rt) = setup();
        let cached = invoker.add(&list, &rt).unwrap();
        invoker.check(&list, &rt, &cached).unwrap();
        let checks: Vec<_> = calls(&log)
            .into_iter()
            .filter(|c| c["cmd"] == "CHECK")
            .collect();
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0]["stdin"]["prevResult"], cached);
        list["disableCheck"] = json!(true);
        invoker.check(&list, &rt, &cached).unwrap();
        assert_eq!(
            calls(&log).iter().filter(|c| c["cmd"] == "CHECK").count(),
            2
        );
    }

    #[test]
    fn portmap_check_is_skipped_only_for_ipv4_only_results() {
        let (dir, invoker, log, mut list, rt) = setup();
        fake_plugin(&dir.path().join("bin"), "portmap", &log);
        list["plugins"][1]["type"] = json!("portmap");
        let cached = invoker.add(&list, &rt).unwrap();
        let checked = |log: &Path| -> Vec<String> {
            calls(log)
                .into_iter()
                .filter(|c| c["cmd"] == "CHECK")
                .map(|c| c["plugin"].as_str().unwrap().to_string())
                .collect()
        };
        invoker.check(&list, &rt, &cached).unwrap();
        assert_eq!(checked(&log), ["one"]);
        let mut dual = cached.clone();
        dual["ips"]
            .as_array_mut()
            .unwrap()
            .push(json!({"address": "fd00::2/64", "interface": 0}));
        invoker.check(&list, &rt, &dual).unwrap();
        assert_eq!(checked(&log), ["one", "one", "portmap"]);
    }

    #[test]
    fn plugin_error_json_becomes_a_typed_error() {
        let (_dir, invoker, _log, list, mut rt) = setup();
        rt.args.push(("FAIL".into(), "two".into()));
        let error = invoker.add(&list, &rt).unwrap_err();
        match &error {
            CniError::Plugin { plugin, op, error } => {
                assert_eq!(plugin, "two");
                assert_eq!(*op, Op::Add);
                assert_eq!(error.code, 7);
                assert_eq!(error.msg, "no way");
                assert_eq!(error.details, "fake");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(error.code(), Some(7));
        assert_eq!(
            error.to_string(),
            "CNI plugin two ADD failed with code 7: no way (fake)"
        );
    }

    #[test]
    fn non_json_failure_keeps_stderr_and_del_runs_every_plugin() {
        let (_dir, invoker, log, list, mut rt) = setup();
        rt.args.push(("GARBAGE".into(), "two".into()));
        let error = invoker.del(&list, &rt, None).unwrap_err();
        assert!(
            matches!(&error, CniError::Exit { plugin, stderr, .. } if plugin == "two" && stderr == "boom"),
            "{error:?}"
        );
        // "one" still ran after "two" failed, and without a prevResult.
        let calls = calls(&log);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1]["plugin"], "one");
        assert!(calls[1]["stdin"].get("prevResult").is_none());
    }

    #[test]
    fn missing_plugin_is_reported_with_the_search_path() {
        let invoker = Invoker::new(vec!["/nonexistent".into()]);
        let error = invoker.find("bridge").unwrap_err();
        assert_eq!(
            error.to_string(),
            "CNI plugin \"bridge\" not found in /nonexistent"
        );
        assert!(invoker.find("../bin/sh").is_err());
    }
}
