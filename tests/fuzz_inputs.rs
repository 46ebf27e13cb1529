//! Deterministic, mutation-based fuzzing of the two readers of untrusted
//! input, run as ordinary tests with a fixed budget (cargo-fuzz needs a
//! nightly toolchain, which CI does not have):
//!
//! - the manifest loader, through `manifest::load`, the entry point that
//!   `berth validate`, `plan` and `apply` call with a file or a directory;
//! - the layer unpacker, `snapshot::unpack::unpack_layer_with` without root
//!   (`Ownership::Skip`), on generated hostile tars, plain, gzip or zstd.
//!
//! Every input runs under `catch_unwind`: a panic is a failure that names the
//! seed and iteration and saves the input under `target/fuzz-failures/` (or
//! the temp dir when that is not writable); a stack overflow aborts the
//! process instead, and leaves the manifest being loaded in the case
//! directory the test printed first. Each iteration draws from its own
//! PRNG, derived from the seed, the target and the iteration number, so a
//! run is reproducible. Environment:
//!
//! - `BERTH_FUZZ_SEED` (decimal or `0x` hex) and `BERTH_FUZZ_ITERS` change
//!   the seed and the number of iterations of each target;
//! - `BERTH_FUZZ_REPLAY=PATH` runs one saved input instead: a `.yaml` file or
//!   a directory for the loader, a `.tar`, `.tar.gz` or `.tar.zst` for the
//!   unpacker.
//!
//! Besides "no panic", each target checks a promise: every problem the loader
//! reports in a UTF-8 manifest points at a line and column inside its file,
//! and nothing an unpack does appears outside the layer directory.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use berth::manifest::trust::{Resolver, TrustPolicy};
use berth::manifest::{self, Diagnostic, LoadOptions};
use berth::snapshot::unpack::{unpack_layer_with, Compression, UnpackError, UnpackOptions};
use common::names_in;

/// Iterations per target by default: each takes roughly 10 to 20 s in a
/// debug build on a busy two-core machine.
const MANIFEST_ITERS: u64 = 3_000;
const LAYER_ITERS: u64 = 6_000;
const DEFAULT_SEED: u64 = 0x6265_7274_6866_757a; // "berthfuz"

/// Failures kept (and saved) before a target stops early.
const MAX_FAILURES: usize = 8;

// ---------------------------------------------------------------------------
// Budget, PRNG and failure records.

/// splitmix64: small, fast and good enough to drive mutations.
struct Rng(u64);

impl Rng {
    /// The generator of one iteration of one target.
    fn for_iteration(seed: u64, target: &str, iteration: u64) -> Self {
        let salt = target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let mut rng = Rng(seed ^ salt);
        rng.0 ^= rng
            .next()
            .wrapping_add(iteration.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// A number in `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Small numbers often, large ones rarely.
    fn small(&mut self, max: usize) -> usize {
        let bits = self.below(usize::BITS as usize - max.leading_zeros() as usize + 1);
        self.below((1usize << bits).min(max) + 1)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The seed and iteration count of a run.
#[derive(Debug, Clone, Copy)]
struct Budget {
    seed: u64,
    iters: u64,
}

impl Budget {
    fn from_env(default_iters: u64) -> Self {
        let seed = match std::env::var("BERTH_FUZZ_SEED") {
            Ok(text) => parse_number(&text)
                .unwrap_or_else(|| panic!("BERTH_FUZZ_SEED={text:?} is not a number")),
            Err(_) => DEFAULT_SEED,
        };
        let iters = match std::env::var("BERTH_FUZZ_ITERS") {
            Ok(text) => parse_number(&text)
                .unwrap_or_else(|| panic!("BERTH_FUZZ_ITERS={text:?} is not a number")),
            Err(_) => default_iters,
        };
        Budget { seed, iters }
    }
}

fn parse_number(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// A saved input to run instead of generated ones.
fn replay_path() -> Option<PathBuf> {
    std::env::var_os("BERTH_FUZZ_REPLAY").map(PathBuf::from)
}

/// A scratch directory in memory when there is one: thousands of tiny trees
/// are created and removed, and on a disk mounted with `discard` every
/// removal waits for the device.
fn fast_scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-fuzz-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("create a scratch directory")
}

/// Where failing inputs are saved: `target/fuzz-failures/`, or the temp dir
/// when this user cannot write there (CI's unprivileged rerun).
fn failure_dir() -> PathBuf {
    let preferred = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    if fs::create_dir_all(&preferred).is_ok() && writable(&preferred) {
        return preferred;
    }
    let fallback = std::env::temp_dir().join("berth-fuzz-failures");
    let _ = fs::create_dir_all(&fallback);
    fallback
}

fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let ok = fs::write(&probe, b"").is_ok();
    let _ = fs::remove_file(&probe);
    ok
}

/// What went wrong with one input, and where the input was saved.
struct Failure {
    iteration: u64,
    what: String,
    saved: PathBuf,
}

/// Collects the failures of one target and prints its summary.
struct Run {
    target: &'static str,
    budget: Budget,
    failures: Vec<Failure>,
    outcomes: BTreeMap<String, u64>,
    started: Instant,
    done: u64,
    /// The slowest input: (milliseconds, iteration).
    slowest: (u128, u64),
}

impl Run {
    fn new(target: &'static str, budget: Budget) -> Self {
        eprintln!(
            "fuzz {target}: seed {:#x}, {} iterations",
            budget.seed, budget.iters
        );
        Run {
            target,
            budget,
            failures: Vec::new(),
            outcomes: BTreeMap::new(),
            started: Instant::now(),
            done: 0,
            slowest: (0, 0),
        }
    }

    fn outcome(&mut self, name: impl Into<String>) {
        *self.outcomes.entry(name.into()).or_default() += 1;
    }

    /// Saves the input (`write` puts it at the path it is given) and keeps
    /// the failure.
    fn fail(
        &mut self,
        iteration: u64,
        extension: &str,
        what: String,
        write: impl FnOnce(&Path) -> std::io::Result<()>,
    ) {
        let saved = failure_dir().join(format!(
            "{}-{:x}-{iteration}{extension}",
            self.target, self.budget.seed
        ));
        let _ = fs::remove_dir_all(&saved);
        let _ = fs::remove_file(&saved);
        if let Err(error) = write(&saved) {
            eprintln!(
                "could not save the failing input to {}: {error}",
                saved.display()
            );
        }
        eprintln!(
            "fuzz {}: iteration {iteration} failed: {what}\n  input: {}",
            self.target,
            saved.display()
        );
        self.failures.push(Failure {
            iteration,
            what,
            saved,
        });
    }

    /// Counts one finished iteration that started at `began`.
    fn count(&mut self, iteration: u64, began: Instant) {
        self.done += 1;
        let ms = began.elapsed().as_millis();
        if ms > self.slowest.0 {
            self.slowest = (ms, iteration);
        }
    }

    fn should_stop(&self) -> bool {
        self.failures.len() >= MAX_FAILURES
    }

    /// Prints the summary and fails the test on any failure.
    fn finish(self) {
        let elapsed = self.started.elapsed().as_secs_f64();
        eprintln!(
            "fuzz {}: {} iterations in {elapsed:.1} s (seed {:#x}; slowest: iteration {}, {} ms); outcomes: {:?}",
            self.target, self.done, self.budget.seed, self.slowest.1, self.slowest.0, self.outcomes
        );
        if self.failures.is_empty() {
            return;
        }
        let list: Vec<String> = self
            .failures
            .iter()
            .map(|f| {
                format!(
                    "iteration {}: {}\n    replay: BERTH_FUZZ_REPLAY={} cargo test --test fuzz_inputs -- --nocapture\n    or: BERTH_FUZZ_SEED={:#x} BERTH_FUZZ_ITERS={}",
                    f.iteration,
                    f.what,
                    f.saved.display(),
                    self.budget.seed,
                    f.iteration + 1
                )
            })
            .collect();
        panic!(
            "fuzz {}: {} failing input(s):\n  {}",
            self.target,
            self.failures.len(),
            list.join("\n  ")
        );
    }
}

/// Runs `f`, turning a panic into its message.
fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic with a non-string payload".into())
    })
}

// ---------------------------------------------------------------------------
// Target 1: the manifest loader.

/// Seeds besides the bundled examples: fields and YAML features the examples
/// do not use, each a valid set on its own.
const MANIFEST_SEEDS: &[&str] = &[
    "apiVersion: berth/v1
kind: Container
metadata:
  name: full
  labels: {tier: back, 'x.y/z': v}
spec:
  image: registry.example/app:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  imagePullPolicy: Always
  command: [/bin/app]
  args: [--port, \"8080\", -v]
  env:
    - name: MODE
      value: prod
    - name: COUNT
      value: 3
  envFiles: [app.env, /etc/berth/common.env]
  workingDir: /srv
  user: app
  hostname: full-host
  capabilities:
    add: [NET_BIND_SERVICE]
    drop: [ALL]
  devices:
    - /dev/fuse
    - path: /dev/net/tun
      containerPath: /dev/tun
      permissions: rw
  readOnlyRootfs: true
  seccomp: default
  resources: {memory: 1.5Gi, cpus: 2, pids: 512}
  networks:
    - name: back
      ip: 10.77.0.10
      aliases: [api, api-v1]
  ports:
    - {containerPort: 53, hostPort: 5353, protocol: udp, hostIP: 127.0.0.1}
  dependsOn: [store]
  stopSignal: SIGINT
  stopGracePeriod: 1m30s
  restart:
    policy: on-failure
    maxRetries: 10
---
apiVersion: berth/v1
kind: Container
metadata: {name: store}
spec:
  image: oci-archive:./store.tar
  networks: [back]
  mounts:
    - {type: tmpfs, target: /tmp, options: [size=64m, mode=1777]}
    - {type: volume, source: storedata, target: /var/lib/store}
---
apiVersion: berth/v1
kind: Network
metadata: {name: back}
spec:
  driver: bridge
  subnet: 10.77.0.0/24
  ipRange: 10.77.0.0/25
  internal: true
  mtu: 1400
---
apiVersion: berth/v1
kind: Network
metadata: {name: lan}
spec:
  driver: macvlan
  parent: eth0
  subnet: 192.168.77.0/24
  gateway: 192.168.77.1
---
apiVersion: berth/v1
kind: Volume
metadata: {name: storedata}
spec: {driver: local}
",
    "# anchors, aliases and merge keys
apiVersion: berth/v1
kind: Job
metadata: &meta
  name: nightly
  labels: {when: night}
spec:
  schedule: \"30 2 * * 1-5\"
  concurrencyPolicy: Replace
  restartPolicy: OnFailure
  backoffLimit: 3
  activeDeadline: 2h
  template:
    image: docker-archive:../images/tool.tar
    command: &cmd [sh, -c, 'echo \"night: $HOSTNAME\"']
    env: {A: '1', B: \"two\", C: >-
        folded
        text}
    networkMode: host
    healthcheck:
      exec: *cmd
      interval: 30s
      retries: 2
---
apiVersion: berth/v1
kind: Container
metadata: {name: merged}
spec:
  image: busybox
  healthcheck:
    <<: &check {exec: [\"true\"], interval: 10s}
    retries: 5
  stopGracePeriod: 10s
",
    "apiVersion: berth/v1
kind: Network
metadata: {name: v6}
spec:
  driver: ipvlan
  parent: eth1
  subnet: fd00:77::/64
  gateway: fd00:77::1
  plugins:
    - {type: bandwidth, ingressRate: 1000, nested: {deep: [1, 2.5, null, true]}}
---
apiVersion: berth/v1
kind: Container
metadata: {name: six}
spec:
  image: busybox
  networks: [{name: v6, ip: 'fd00:77::5'}]
  ports: [{containerPort: 80}]
  mounts:
    - type: bind
      source: ./data
      target: /data
      readOnly: true
  restart: {policy: always, backoff: {initial: 100ms, max: 1h, resetAfter: 10m}}
",
];

/// Tokens that mean something to YAML (or to a UTF-8 decoder), inserted at
/// random places.
const YAML_TOKENS: &[&[u8]] = &[
    b": ",
    b"- ",
    b"&a ",
    b"*a",
    b"<<: *a\n",
    b"<<: [*a, *b]\n",
    b"&b ",
    b"*b",
    b"*undefined",
    b"!!binary ",
    b"!!str ",
    b"!!int ",
    b"!!float ",
    b"!!null ",
    b"!!map ",
    b"!!seq ",
    b"!!set ",
    b"!!timestamp ",
    b"!local ",
    b"!<tag:yaml.org,2002:str> ",
    b"!e!x ",
    b"\t",
    b"\t\t",
    b"[[[[",
    b"{{{{",
    b"]]]]",
    b"}}}}",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b"? ",
    b"|",
    b"|-",
    b"|+2",
    b">",
    b">-",
    b"#",
    b"'",
    b"\"",
    b"\\",
    b"\\x",
    b"\"\\u",
    b"\0",
    b"\r",
    b"\r\n",
    b"\n",
    b"\n---\n",
    b"---",
    b"...",
    b"\n...\n",
    b"%YAML 1.2\n---\n",
    b"%YAML 1.1\n",
    b"%TAG !e! tag:e,2000:\n---\n",
    b"%FOO bar\n",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xc0\xaf",
    b"\xe2\x80\xa8",
    b"\xc2\x85",
    b"\xef\xbf\xbf",
    b"@",
    b"`",
    b"%",
    b"~",
    b"99999999999999999999999999999",
    b"-9223372036854775809",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"0x8000000000000000",
    b"0xffffffffffffffffff",
    b"0o7777777777777777777777",
    b"1e999",
    b"-1e999",
    b"1e-999",
    b".nan",
    b"-.inf",
    b".inf",
    b"1_000",
    b"0b101",
    b"-0",
    b"4294967296",
    b"65536",
    b"-1",
    b"null",
    b"true",
    b"yes",
    b"apiVersion: berth/v1\n",
    b"kind: Container\n",
    b"kind: Job\n",
    b"kind: Network\n",
    b"kind: Volume\n",
    b"metadata: {name: x}\n",
    b"spec: {}\n",
    b"spec:\n  image: busybox\n",
    b"name: ",
    b"spec",
    b"metadata",
];

/// Values put where a scalar was: the edges of every vocabulary the
/// validator knows (sizes, durations, cron, addresses, users, paths).
const SCALARS: &[&str] = &[
    "0",
    "-1",
    "1",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "1e308",
    "1e309",
    "-0.0",
    "0.000001",
    "1Gi",
    "1.5Mi",
    "0.5",
    "1e3",
    "99999999999Ei",
    "16Ei",
    "1k",
    "1K",
    "1KiB",
    "-5Mi",
    "5m",
    "1h",
    "0s",
    "-5s",
    "999999999999h",
    "1.5.5s",
    "5m3",
    "1h1h",
    "1ns",
    "1us",
    "1µs",
    "9223372036s",
    "*/0 * * * *",
    "60 * * * *",
    "* * * * * *",
    "@hourly",
    "@every 1s",
    "0-59/1 0-23 1-31 1-12 0-7",
    "5-1 * * * *",
    "*/99999999999 * * * *",
    "1,2,,3 * * * *",
    "L W # ? *",
    "10.0.0.0/8",
    "10.0.0.0/33",
    "10.0.0.1/8",
    "0.0.0.0/0",
    "::/0",
    "fe80::/10",
    "2001:db8::/129",
    "2001:db8::/64",
    "127.0.0.1",
    "0.0.0.0",
    "256.0.0.1",
    "::ffff:1.2.3.4",
    "fe80::1%eth0",
    "a:b",
    "1000:1000",
    "4294967296:0",
    "root",
    "-",
    "SIGKILL",
    "SIG",
    "KILL",
    "64",
    "99",
    "/dev/null",
    "/dev/../etc",
    "../../../../etc/shadow",
    "/proc/self/fd/0",
    "",
    "/",
    ".",
    "oci-layout:",
    "oci-layout:/",
    "oci-layout:x@sha256:",
    "oci-archive:x.tar",
    "docker-archive:../y.tar",
    "busybox@sha256:zz",
    "a/b/c:tag@sha256:0000",
    "UPPER",
    "web",
    "-web",
    "a--b",
    "é",
    "\u{202e}evil",
    "💥",
    "'quoted'",
    "\"dq\"",
    "[a, b]",
    "{a: b}",
    "{name: x, ip: 10.0.0.1}",
    "[]",
    "{}",
    "~",
    "null",
    "true",
    "rwm",
    "rwx",
    "ALL",
    "CAP_SYS_ADMIN",
    "never",
    "always",
    "on-failure",
    "unless-stopped",
    "Never",
    "OnFailure",
    "Indexed",
    "Forbid",
    "bridge",
    "macvlan",
    "ipvlan",
    "host",
    "none",
    "container:x",
    "tmpfs",
    "bind",
    "volume",
    "healthy",
    "started",
    "completed",
    "tcp",
    "udp",
    "sctp",
];

/// One generated manifest input: files relative to the case directory and
/// the path the loader is given.
struct ManifestCase {
    files: Vec<(String, Vec<u8>)>,
    /// Load the single file itself rather than the directory.
    load_file: bool,
    trusted: bool,
}

struct ManifestFuzzer {
    /// Valid manifest sets: each inline seed alone, each example directory
    /// whole (its files refer to each other).
    sets: Vec<Vec<Vec<u8>>>,
    /// Every file of every set, for mutation and splicing.
    seeds: Vec<Vec<u8>>,
}

impl ManifestFuzzer {
    fn new() -> Self {
        let mut sets: Vec<Vec<Vec<u8>>> = MANIFEST_SEEDS
            .iter()
            .map(|s| vec![s.as_bytes().to_vec()])
            .collect();
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut dirs: Vec<PathBuf> = fs::read_dir(&examples)
            .expect("list examples")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let mut found = Vec::new();
            collect_yaml(&dir, &mut found);
            found.sort();
            // A directory of other things (the quickstart's image layout,
            // made on first run) is no manifest set.
            if found.is_empty() {
                continue;
            }
            let files = found
                .iter()
                .map(|path| fs::read(path).expect("read example manifest"))
                .collect();
            sets.push(files);
        }
        assert!(
            sets.len() > MANIFEST_SEEDS.len(),
            "no example manifests under {}",
            examples.display()
        );
        let seeds = sets.iter().flatten().cloned().collect();
        ManifestFuzzer { sets, seeds }
    }

    /// Mutations of valid sets reach every check; a broken seed would
    /// leave the deeper ones untried.
    fn assert_seeds_are_valid(&self, dir: &Path) {
        for set in &self.sets {
            let case = ManifestCase {
                files: set
                    .iter()
                    .enumerate()
                    .map(|(i, text)| (format!("f{i}.yaml"), text.clone()))
                    .collect(),
                load_file: false,
                trusted: false,
            };
            let path = write_case(dir, &case);
            let result = manifest::load(&[path.display().to_string()], LoadOptions::default());
            if let Err(problems) = result {
                let texts: Vec<_> = set.iter().map(|t| String::from_utf8_lossy(t)).collect();
                panic!("seed set is not valid: {problems:?}\n{}", texts.join("\n"));
            }
        }
    }

    fn case(&self, rng: &mut Rng, trust_available: bool) -> ManifestCase {
        let texts: Vec<Vec<u8>> = match rng.below(10) {
            // a whole valid set, one file or more of it mutated
            0..=2 => {
                let set = rng.pick(&self.sets);
                let target = rng.below(set.len());
                set.iter()
                    .enumerate()
                    .map(|(i, text)| {
                        if i == target || rng.percent(30) {
                            self.mutate(rng, text.clone())
                        } else {
                            text.clone()
                        }
                    })
                    .collect()
            }
            // files mutated from any seeds
            3 | 4 => (0..rng.between(2, 4)).map(|_| self.mutated(rng)).collect(),
            _ => vec![self.mutated(rng)],
        };
        let files: Vec<(String, Vec<u8>)> = texts
            .into_iter()
            .enumerate()
            .map(|(i, text)| {
                let name = match (i, rng.below(3)) {
                    (0, _) | (_, 0) => format!("f{i}.yaml"),
                    (_, 1) => format!("f{i}.yml"),
                    _ => format!("sub/f{i}.yaml"),
                };
                (name, text)
            })
            .collect();
        ManifestCase {
            load_file: files.len() == 1 && rng.percent(50),
            files,
            trusted: trust_available && rng.percent(15),
        }
    }

    fn mutated(&self, rng: &mut Rng) -> Vec<u8> {
        let text = rng.pick(&self.seeds).clone();
        if rng.percent(3) {
            return text; // unmutated seeds keep the valid path covered
        }
        self.mutate(rng, text)
    }

    fn mutate(&self, rng: &mut Rng, mut text: Vec<u8>) -> Vec<u8> {
        let rounds = 1 + rng.small(12);
        for _ in 0..rounds {
            self.mutate_once(rng, &mut text);
        }
        text
    }

    fn mutate_once(&self, rng: &mut Rng, text: &mut Vec<u8>) {
        let len = text.len();
        match rng.below(14) {
            0 => {
                // flip a bit
                if len > 0 {
                    let i = rng.below(len);
                    text[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                // a random or meaningful byte
                if len > 0 {
                    let i = rng.below(len);
                    text[i] = if rng.percent(50) {
                        rng.next() as u8
                    } else {
                        *rng.pick(b":-[]{},&*!|>#'\"\t\n\r \0%@`?~\\")
                    };
                }
            }
            2 => {
                // delete a range
                if len > 0 {
                    let start = rng.below(len);
                    let end = (start + 1 + rng.small(64)).min(len);
                    text.drain(start..end);
                }
            }
            3 => {
                // duplicate a range somewhere
                if len > 0 {
                    let start = rng.below(len);
                    let end = (start + 1 + rng.small(256)).min(len);
                    let chunk = text[start..end].to_vec();
                    let at = rng.below(text.len() + 1);
                    text.splice(at..at, chunk);
                }
            }
            4 | 5 => {
                let token = *rng.pick(YAML_TOKENS);
                let at = self.position(rng, text);
                text.splice(at..at, token.iter().copied());
            }
            6 => {
                // splice with another seed
                let other = rng.pick(&self.seeds);
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                text.truncate(cut);
                text.extend_from_slice(&other[from..]);
            }
            7 | 8 => self.replace_value(rng, text),
            9 => self.shuffle_lines(rng, text),
            10 => {
                // deep nesting, around the depth limit and far beyond it
                let depth = *rng.pick(&[8, 64, 127, 128, 129, 300, 5_000]);
                let (open, close): (&[u8], &[u8]) = *rng.pick(&[
                    (&b"["[..], &b"]"[..]),
                    (b"{a: ", b"}"),
                    (b"- ", b""),
                    (b"[{x: ", b"}]"),
                ]);
                let mut chunk = open.repeat(depth);
                if rng.percent(50) {
                    chunk.extend(close.repeat(depth));
                }
                let at = self.position(rng, text);
                text.splice(at..at, chunk);
            }
            11 => {
                // a very long scalar
                let n = *rng.pick(&[300, 300, 5_000, 5_000, 70_000, 200_000]);
                let fill = *rng.pick(b"a9 x");
                let at = self.position(rng, text);
                text.splice(at..at, vec![fill; n]);
            }
            12 => self.alias_structure(rng, text),
            _ => {
                // indentation of one line
                let at = line_start(text, rng.below(text.len() + 1));
                if rng.percent(50) {
                    let spaces = rng.between(1, 9);
                    text.splice(at..at, std::iter::repeat_n(b' ', spaces));
                } else {
                    let end = text[at..]
                        .iter()
                        .position(|&b| b != b' ')
                        .map_or(text.len(), |p| at + p);
                    let cut = (at + rng.between(1, 4)).min(end);
                    text.drain(at..cut);
                }
            }
        }
        // Keep inputs far below the loader's 4 MiB bound.
        text.truncate(256 << 10);
    }

    /// A byte offset, usually at a line start or a value.
    fn position(&self, rng: &mut Rng, text: &[u8]) -> usize {
        match rng.below(3) {
            0 => line_start(text, rng.below(text.len() + 1)),
            1 => value_spot(text, rng.below(text.len() + 1)).unwrap_or(0),
            _ => rng.below(text.len() + 1),
        }
    }

    /// Replaces the rest of a line after `: ` or `- ` with a scalar.
    fn replace_value(&self, rng: &mut Rng, text: &mut Vec<u8>) {
        let Some(at) = value_spot(text, rng.below(text.len() + 1)) else {
            return;
        };
        let end = text[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |p| at + p);
        let value = *rng.pick(SCALARS);
        let value = match rng.below(4) {
            0 => format!("'{value}'"),
            1 => format!("{value:?}"),
            _ => value.to_string(),
        };
        text.splice(at..end, value.into_bytes());
    }

    fn shuffle_lines(&self, rng: &mut Rng, text: &mut Vec<u8>) {
        let mut lines: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        if lines.len() < 2 {
            return;
        }
        let a = rng.below(lines.len());
        let b = rng.below(lines.len());
        match rng.below(3) {
            0 => lines.swap(a, b),
            1 => {
                let line = lines[a].clone();
                lines.insert(b, line);
            }
            _ => {
                lines.remove(a);
            }
        }
        *text = lines.join(&b'\n');
    }

    /// Anchors whose aliases repeat each other: wide chains multiply the
    /// node count (against the alias limit), deep ones nest brackets around a
    /// single alias (against the depth limit).
    fn alias_structure(&self, rng: &mut Rng, text: &mut Vec<u8>) {
        let (levels, width, nest) = if rng.percent(50) {
            (rng.between(2, 6), rng.between(2, 4), rng.between(0, 4))
        } else {
            (rng.between(2, 48), 1, rng.between(1, 127))
        };
        let mut chunk = format!("x0: &a0 {}1{}\n", "[".repeat(nest), "]".repeat(nest));
        for level in 1..levels {
            let items = vec![format!("*a{}", level - 1); width].join(", ");
            chunk.push_str(&format!(
                "x{level}: &a{level} {}{items}{}\n",
                "[".repeat(nest),
                "]".repeat(nest)
            ));
        }
        if rng.percent(30) {
            chunk.push_str(&format!("m: {{<<: *a{}}}\n", levels - 1));
        }
        let at = line_start(text, rng.below(text.len() + 1));
        text.splice(at..at, chunk.into_bytes());
    }
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// The start of the line that holds `at`.
fn line_start(text: &[u8], at: usize) -> usize {
    text[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1)
}

/// The offset right after the first `: ` or `- ` at or after `from`
/// (wrapping around), where a value starts.
fn value_spot(text: &[u8], from: usize) -> Option<usize> {
    let find = |slice: &[u8]| slice.windows(2).position(|w| w == b": " || w == b"- ");
    find(&text[from..])
        .map(|p| from + p + 2)
        .or_else(|| find(text).map(|p| p + 2))
}

/// A directory where [`TrustPolicy`] accepts files of the running user: not
/// under the sticky /tmp. Tried: this crate's target dir, then `$HOME`.
fn trusted_base() -> Option<tempfile::TempDir> {
    let policy = TrustPolicy::with_invoking_user(nix::unistd::geteuid().as_raw());
    let candidates = [
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("target")),
        std::env::var_os("HOME").map(PathBuf::from),
    ];
    for candidate in candidates.into_iter().flatten() {
        let Ok(dir) = tempfile::Builder::new()
            .prefix("fuzz-manifest-")
            .tempdir_in(&candidate)
        else {
            continue;
        };
        if fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).is_ok()
            && Resolver::new(Some(policy)).resolve(dir.path()).is_ok()
        {
            return Some(dir);
        }
    }
    None
}

/// Writes a case below `dir` and returns the path to load. Files of the
/// previous case that this one lacks are removed; the directories stay
/// (fewer metadata writes where the case lives on disk).
fn write_case(dir: &Path, case: &ManifestCase) -> PathBuf {
    fs::create_dir_all(dir.join("sub")).expect("create case dir");
    for sub in [dir.to_path_buf(), dir.join("sub")] {
        for entry in fs::read_dir(&sub).expect("list case dir").flatten() {
            let path = entry.path();
            let stale =
                path.is_file() && !case.files.iter().any(|(name, _)| dir.join(name) == path);
            if stale {
                fs::remove_file(&path).expect("remove stale case file");
            }
        }
    }
    for (name, text) in &case.files {
        let path = dir.join(name);
        fs::write(&path, text).expect("write case file");
        // Trust refuses group- or world-writable files whatever the umask.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod case file");
    }
    if case.load_file {
        dir.join(&case.files[0].0)
    } else {
        dir.to_path_buf()
    }
}

fn load_options(trusted: bool) -> LoadOptions {
    if trusted {
        LoadOptions::trusting(TrustPolicy::with_invoking_user(
            nix::unistd::geteuid().as_raw(),
        ))
    } else {
        LoadOptions::default()
    }
}

/// Runs the loader on `path` and checks what it reports; `Err` says what is wrong.
fn check_load(path: &Path, files: &[(PathBuf, Vec<u8>)], trusted: bool) -> Result<String, String> {
    let arg = path.display().to_string();
    let result = catch(|| manifest::load(&[arg], load_options(trusted)))
        .map_err(|message| format!("panic: {message}"))?;
    match result {
        Ok(set) => Ok(format!("valid ({} objects)", set.objects.len().min(3))),
        Err(problems) => {
            for (file, text) in files {
                check_locations(file, text, &problems)?;
            }
            Ok(classify(&problems))
        }
    }
}

/// Every problem in a UTF-8 manifest points at a line and column inside
/// the file; a file that is not UTF-8 is named as such.
fn check_locations(file: &Path, text: &[u8], problems: &[Diagnostic]) -> Result<(), String> {
    let shown = file.display().to_string();
    let mine: Vec<&Diagnostic> = problems.iter().filter(|p| p.file == shown).collect();
    if std::str::from_utf8(text).is_err() {
        return if mine
            .iter()
            .any(|p| p.line == 0 && p.message.contains("not a UTF-8 text file"))
        {
            Ok(())
        } else {
            Err(format!(
                "{shown} is not UTF-8 but no problem says so: {mine:?}"
            ))
        };
    }
    if mine.is_empty() {
        return Ok(());
    }
    let widths = line_widths(&String::from_utf8_lossy(text));
    for problem in mine {
        let inside = problem.line >= 1
            && problem.column >= 1
            && widths
                .get(problem.line - 1)
                .is_some_and(|&width| problem.column <= width + 1);
        if !inside {
            return Err(format!(
                "problem points outside the text ({} lines, that one {:?} characters wide): {problem:?}",
                widths.len(),
                problem.line.checked_sub(1).and_then(|i| widths.get(i)),
            ));
        }
    }
    Ok(())
}

/// The width in characters of each line, as YAML breaks lines: at `\n`,
/// `\r\n` and a lone `\r`.
fn line_widths(text: &str) -> Vec<usize> {
    let mut widths = vec![0];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => widths.push(0),
            _ => *widths.last_mut().expect("one line at least") += 1,
        }
    }
    widths
}

/// A coarse name for what the loader said, for the outcome counts.
fn classify(problems: &[Diagnostic]) -> String {
    let first = &problems[0];
    let kind = if first.message.starts_with("YAML syntax error") {
        "yaml syntax"
    } else if first.message.contains("not a UTF-8") {
        "not utf-8"
    } else if first.message.starts_with("refusing untrusted") {
        "untrusted"
    } else if first.line == 0 {
        "file-level"
    } else if first.path.is_empty() {
        "document"
    } else {
        "field"
    };
    format!("error: {kind}")
}

#[test]
fn manifest_loader_survives_mutated_manifests() {
    if let Some(path) = replay_path() {
        if is_layer_name(&path) {
            return;
        }
        let files = read_replay_files(&path);
        let trusted = path.to_string_lossy().ends_with("-trusted");
        let outcome = check_load(&path, &files, trusted);
        eprintln!("replay {}: {outcome:?}", path.display());
        assert!(outcome.is_ok(), "{outcome:?}");
        return;
    }
    let budget = Budget::from_env(MANIFEST_ITERS);
    let fuzzer = ManifestFuzzer::new();
    let trusted = trusted_base();
    // Trusted loads need a directory under the crate (on disk) or $HOME;
    // the others run in memory.
    let scratch = fast_scratch();
    let fast_dir = scratch.path().join("case");
    fuzzer.assert_seeds_are_valid(&fast_dir);
    let trusted_dir = trusted.as_ref().map(|t| t.path().join("case"));
    if trusted.is_none() {
        eprintln!("fuzz manifest: no directory the trust rules accept; trusted loads not fuzzed");
    }
    let mut run = Run::new("manifest", budget);
    eprintln!(
        "fuzz manifest: each input is written to {} (or, for trusted loads, {}) before it loads; a crash leaves it there",
        fast_dir.display(),
        trusted_dir.as_deref().unwrap_or(&fast_dir).display()
    );
    for iteration in 0..budget.iters {
        let began = Instant::now();
        let mut rng = Rng::for_iteration(budget.seed, "manifest", iteration);
        let case = fuzzer.case(&mut rng, trusted.is_some());
        let case_dir = match &trusted_dir {
            Some(dir) if case.trusted => dir,
            _ => &fast_dir,
        };
        let path = write_case(case_dir, &case);
        let files: Vec<(PathBuf, Vec<u8>)> = case
            .files
            .iter()
            .map(|(name, text)| {
                let shown = if case.load_file {
                    path.clone()
                } else {
                    case_dir.join(name)
                };
                (shown, text.clone())
            })
            .collect();
        match check_load(&path, &files, case.trusted) {
            Ok(outcome) => run.outcome(outcome),
            Err(what) => {
                let suffix = if case.trusted { "-trusted" } else { "" };
                run.fail(iteration, suffix, what, |saved| save_case(saved, &case));
            }
        }
        run.count(iteration, began);
        if run.should_stop() {
            break;
        }
    }
    assert_mix(&run, &["valid", "error: yaml syntax", "error: field"]);
    run.finish();
}

/// Saves a case as a directory that `BERTH_FUZZ_REPLAY` loads as it is.
fn save_case(saved: &Path, case: &ManifestCase) -> std::io::Result<()> {
    fs::create_dir_all(saved.join("sub"))?;
    for (name, text) in &case.files {
        fs::write(saved.join(name), text)?;
    }
    Ok(())
}

fn read_replay_files(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    if path.is_dir() {
        collect_yaml(path, &mut found);
    } else {
        found.push(path.to_path_buf());
    }
    found
        .into_iter()
        .map(|p| {
            let text = fs::read(&p).expect("read replay file");
            (p, text)
        })
        .collect()
}

/// With the default budget, the mutations must reach every stage: a fuzzer
/// whose inputs all fail at the first byte tests nothing.
fn assert_mix(run: &Run, needed: &[&str]) {
    if run.budget.iters < 1_000 || !run.failures.is_empty() {
        return;
    }
    for stage in needed {
        assert!(
            run.outcomes.keys().any(|k| k.starts_with(stage)),
            "fuzz {}: no input ended as {stage:?}; outcomes: {:?}",
            run.target,
            run.outcomes
        );
    }
}

// ---------------------------------------------------------------------------
// Target 2: the layer unpacker.

/// Name components, from the plain to the odd. No `..`: names that climb
/// come from [`DOTDOT_NAMES`] and climb into the sandbox at most, where the
/// containment check sees whatever lands there.
const COMPONENTS: &[&[u8]] = &[
    b"a",
    b"b",
    b"c",
    b"dir",
    b"etc",
    b"x",
    b"lnk",
    b"escape",
    b"target",
    b"outside",
    b".",
    b"...",
    b". .",
    b"-",
    b"a b",
    b"\xc3\xa9",
    b"\xff\xfe",
    b".wh.a",
    b".wh..wh..opq",
    b"passwd",
];

const DOTDOT_NAMES: &[&[u8]] = &[
    b"../escape",
    b"a/../../escape",
    b"./../escape",
    b"a/b/../../../escape",
    b"..",
    b"../",
    b"a/..",
    b"a/./../../outside/escape",
];

const ODD_NAMES: &[&[u8]] = &[
    b"",
    b".",
    b"./",
    b"/",
    b"//",
    b"a//b",
    b"./a/./b/",
    b"a/",
    b"\xff\xfe",
    b"-",
    b" ",
];

/// Where absolute names point: into the sandbox around the layer directory.
const ESCAPES: &[&[u8]] = &[b"/escape", b"/outside/escape", b"/x"];

/// Absolute link targets below the sandbox.
const SANDBOX_TARGETS: &[&[u8]] = &[b"", b"/outside/secret", b"/outside", b"/target"];

const BROKEN_PAX_RECORDS: &[&[u8]] = &[b"garbage", b"0 \n", b"3 =\n", b"-1 x=y\n"];

const WHITEOUTS: &[&[u8]] = &[
    b".wh.a",
    b".wh.dir",
    b".wh.lnk",
    b".wh..wh..opq",
    b".wh..wh.plnk",
    b".wh..wh.aufs",
    b".wh.",
    b".wh..",
    b".wh...",
    b".wh.escape",
];

/// PAX record keys a hostile layer might carry.
const PAX_KEYS: &[&str] = &[
    "path",
    "linkpath",
    "mtime",
    "atime",
    "size",
    "uid",
    "gid",
    "uname",
    "SCHILY.xattr.user.test",
    "SCHILY.xattr.user.overlay.opaque",
    "SCHILY.xattr.trusted.overlay.opaque",
    "SCHILY.xattr.trusted.overlay.redirect",
    "SCHILY.xattr.security.capability",
    "SCHILY.xattr.",
    "SCHILY.xattr.user.",
    "GNU.sparse.size",
    "GNU.sparse.map",
    "LIBARCHIVE.xattr.user.x",
    "comment",
];

/// Numbers at the edges of the types a tar header or PAX record holds.
const EDGE_NUMBERS: &[i128] = &[
    0,
    1,
    511,
    512,
    1 << 21,
    0o7777,
    0o77777777,
    0o777777777777,
    u32::MAX as i128,
    1 << 32,
    i64::MAX as i128,
    i64::MIN as i128,
    1 << 63,
    u64::MAX as i128,
    1 << 64,
    1_600_000_000,
    -1,
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Gnu,
    Ustar,
    Old,
}

/// Builds one hostile tar stream, remembering where its headers are so that
/// checksums can be fixed after byte mutations.
struct LayerGen<'r> {
    rng: &'r mut Rng,
    /// The absolute path of the sandbox around the layer directory.
    parent: Vec<u8>,
    out: Vec<u8>,
    headers: Vec<usize>,
    names: Vec<Vec<u8>>,
    /// A symlink the next member's name goes through.
    through: Option<Vec<u8>>,
}

impl LayerGen<'_> {
    fn archive(mut self) -> (Vec<u8>, Vec<usize>) {
        if self.rng.percent(4) {
            return (self.random_blocks(), Vec::new());
        }
        let members = 1 + self.rng.small(14);
        for _ in 0..members {
            self.member();
        }
        match self.rng.below(10) {
            0 => {}
            1 => self.out.extend_from_slice(&[0; 512]),
            _ => self.out.extend_from_slice(&[0; 1024]),
        }
        if self.rng.percent(5) {
            let junk = self.rng.small(2048);
            let junk = self.rng.bytes(junk);
            self.out.extend(junk);
        }
        (self.out, self.headers)
    }

    /// Random bytes, or random 512-byte blocks with valid checksums.
    fn random_blocks(&mut self) -> Vec<u8> {
        let blocks = 1 + self.rng.small(8);
        let mut out = self.rng.bytes(blocks * 512);
        if self.rng.percent(50) {
            for block in out.chunks_mut(512) {
                fix_checksum(block);
            }
        }
        out
    }

    fn member(&mut self) {
        let kind = match self.rng.below(100) {
            0..=29 => b'0',
            30..=44 => b'5',
            45..=56 => b'2',
            57..=66 => b'1',
            67..=69 => b'6',
            70..=71 => b'3',
            72..=73 => b'4',
            74..=77 => b'S',
            78 => b'7',
            79 => b'\0',
            80..=81 => b'g',
            82..=83 => *self.rng.pick(b"xLKVMNDI9Z"),
            _ => match self.rng.below(4) {
                0 => b'2',
                1 => b'1',
                _ => b'0',
            },
        };
        let format = match self.rng.below(10) {
            0..=4 => Format::Gnu,
            5..=8 => Format::Ustar,
            _ => Format::Old,
        };
        let kind = if kind == b'S' && format != Format::Gnu {
            b'0'
        } else {
            kind
        };
        let name = if self.rng.percent(10) {
            let parent = self.dir_name();
            let whiteout = *self.rng.pick(WHITEOUTS);
            join(&parent, whiteout)
        } else {
            self.path()
        };
        let mut link = if matches!(kind, b'1' | b'2') || self.rng.percent(3) {
            self.link_target()
        } else {
            Vec::new()
        };
        if kind == b'2' && link.starts_with(b"/") && !link.starts_with(&self.parent) {
            // An absolute symlink points into the sandbox too: should the
            // unpacker ever follow one, the escape lands where it is seen,
            // not in the host's root.
            link = [&self.parent[..], &link[..]].concat();
        }
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if self.rng.percent(20) {
            for _ in 0..self.rng.between(1, 4) {
                pax.push(self.pax_record());
            }
        }
        // Names that do not fit (or hold a NUL) go into an extension.
        let name_field = self.place_name(&name, format, b'L', "path", &mut pax);
        let link_field = self.place_name(&link, format, b'K', "linkpath", &mut pax);
        if !pax.is_empty() {
            let data = self.pax_data(&pax);
            let typ = if self.rng.percent(10) { b'g' } else { b'x' };
            self.extension(typ, b"PaxHeaders/x", &data);
        }
        let data = self.data_for(kind);
        let mut header = self.header(format, kind, &name_field, &link_field, data.len());
        if kind == b'S' {
            self.sparse_map(&mut header, data.len());
        }
        self.push(&header, &data);
        if kind == b'2' && self.rng.percent(40) {
            // the next member goes through the symlink just made
            self.through = Some(name.clone());
        }
        self.names.push(name);
    }

    /// The bytes for the header's name field; what does not fit is emitted
    /// as a GNU long-name member or a PAX record first.
    fn place_name(
        &mut self,
        name: &[u8],
        format: Format,
        long_type: u8,
        pax_key: &str,
        pax: &mut Vec<(String, Vec<u8>)>,
    ) -> Vec<u8> {
        let fits = name.len() <= 100 && !name.contains(&0);
        if fits && self.rng.percent(90) {
            return name.to_vec();
        }
        match (format, self.rng.below(3)) {
            (Format::Gnu, 0 | 1) => {
                let mut data = name.to_vec();
                if self.rng.percent(80) {
                    data.push(0);
                }
                self.extension(long_type, b"././@LongLink", &data);
                b"truncated-by-long-name".to_vec()
            }
            (_, 2) if !fits => name[..name.len().min(100)].to_vec(),
            _ => {
                pax.push((pax_key.to_string(), name.to_vec()));
                name[..name.len().min(100)].to_vec()
            }
        }
    }

    fn path(&mut self) -> Vec<u8> {
        if let Some(symlink) = self.through.take() {
            let tail = self.relative();
            return join(&symlink, &tail);
        }
        match self.rng.below(20) {
            0 | 1 if !self.names.is_empty() => self.rng.pick(&self.names).clone(),
            2 => self.rng.pick(DOTDOT_NAMES).to_vec(),
            3 => {
                let mut p = self.parent.clone();
                let tail = *self.rng.pick(ESCAPES);
                p.extend_from_slice(tail);
                p
            }
            // Absolute names all lead into the sandbox, where an escape is
            // seen (and the host's root is never at stake).
            4 => {
                let mut p = self.parent.clone();
                p.push(b'/');
                p.extend(self.relative());
                p
            }
            5 => self.long_name(),
            6 => self.rng.pick(ODD_NAMES).to_vec(),
            // through something earlier (a symlink, a file, a whiteout)
            7 | 8 if !self.names.is_empty() => {
                let base = self.rng.pick(&self.names).clone();
                let tail = self.relative();
                join(&base, &tail)
            }
            9 => {
                let mut p = self.relative();
                p.push(0);
                p.extend_from_slice(b"hidden");
                p
            }
            _ => self.relative(),
        }
    }

    fn relative(&mut self) -> Vec<u8> {
        let parts = self.rng.between(1, 3);
        let mut p = Vec::new();
        for i in 0..parts {
            if i > 0 {
                p.push(b'/');
            }
            // Mostly plain names, so that entries meet each other.
            let comp = if self.rng.percent(75) {
                *self.rng.pick(&COMPONENTS[..9])
            } else {
                *self.rng.pick(COMPONENTS)
            };
            p.extend_from_slice(comp);
        }
        p
    }

    fn dir_name(&mut self) -> Vec<u8> {
        match self.rng.below(4) {
            0 => Vec::new(),
            1 if !self.names.is_empty() => self.rng.pick(&self.names).clone(),
            _ => self.relative(),
        }
    }

    fn long_name(&mut self) -> Vec<u8> {
        let comp_len = *self.rng.pick(&[50, 99, 100, 101, 155, 255, 256, 300]);
        let comps = self.rng.between(1, 20);
        let comp = vec![b'n'; comp_len];
        let mut p = Vec::new();
        for i in 0..comps {
            if i > 0 {
                p.push(b'/');
            }
            p.extend_from_slice(&comp);
        }
        p
    }

    fn link_target(&mut self) -> Vec<u8> {
        match self.rng.below(12) {
            0..=2 if !self.names.is_empty() => self.rng.pick(&self.names).clone(),
            3 if !self.names.is_empty() => {
                let mut p = b"/".to_vec();
                p.extend(self.rng.pick(&self.names).clone());
                p
            }
            4 => self
                .rng
                .pick(&[
                    &b".."[..],
                    b"../..",
                    b"../outside/secret",
                    b"../../",
                    b"./../outside",
                    b"a/../../outside/secret",
                ])
                .to_vec(),
            5 => {
                let mut p = self.parent.clone();
                let tail = *self.rng.pick(SANDBOX_TARGETS);
                p.extend_from_slice(tail);
                p
            }
            6 => self
                .rng
                .pick(&[&b"/"[..], b"/outside/secret", b"/target/a", b"/a"])
                .to_vec(),
            7 => self
                .rng
                .pick(&[&b""[..], b".", b"./", b"lnk/x", b"a\0b"])
                .to_vec(),
            8 => self.long_name(),
            _ => self.relative(),
        }
    }

    fn pax_record(&mut self) -> (String, Vec<u8>) {
        let key = self.rng.pick(PAX_KEYS).to_string();
        let value = match key.as_str() {
            "path" | "linkpath" => self.path(),
            "mtime" | "atime" | "size" | "uid" | "gid" | "GNU.sparse.size" => self.pax_number(),
            _ if self.rng.percent(20) => {
                let n = self.rng.small(64);
                self.rng.bytes(n)
            }
            _ => self.rng.pick(&[&b"y"[..], b"", b"\0", b"0s"]).to_vec(),
        };
        (key, value)
    }

    /// A decimal at a type's edge, sometimes with a doubled sign or a
    /// fraction, or not a number at all.
    fn pax_number(&mut self) -> Vec<u8> {
        if self.rng.percent(10) {
            return self
                .rng
                .pick(&[&b""[..], b"-", b"x", b"1e10", b".5", b"1.", b" 1", b"1 "])
                .to_vec();
        }
        let mut text = String::new();
        match self.rng.below(6) {
            0 => text.push('-'),
            1 => text.push('+'),
            _ => {}
        }
        text.push_str(&self.rng.pick(EDGE_NUMBERS).to_string());
        if self.rng.percent(30) {
            text.push('.');
            let digits = self.rng.small(20);
            for _ in 0..digits {
                text.push(char::from(b'0' + self.rng.below(10) as u8));
            }
        }
        text.into_bytes()
    }

    /// The body of a PAX header: `LEN key=value\n` records, some broken.
    fn pax_data(&mut self, records: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut data = Vec::new();
        for (key, value) in records {
            let body = 1 + key.len() + 1 + value.len() + 1;
            let mut len = body + 1;
            while len.to_string().len() + body != len {
                len += 1;
            }
            let len = match self.rng.below(60) {
                0 => len + self.rng.between(1, 10),
                1 => len.saturating_sub(self.rng.between(1, 10)),
                2 => usize::MAX,
                _ => len,
            };
            data.extend_from_slice(len.to_string().as_bytes());
            data.push(b' ');
            data.extend_from_slice(key.as_bytes());
            data.push(b'=');
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        if self.rng.percent(5) {
            let tail = *self.rng.pick(BROKEN_PAX_RECORDS);
            data.extend_from_slice(tail);
        }
        data
    }

    fn data_for(&mut self, kind: u8) -> Vec<u8> {
        match kind {
            b'0' | b'7' | b'\0' | b'S' => {
                let n = if self.rng.percent(5) {
                    self.rng.between(512, 70_000)
                } else {
                    self.rng.small(1500)
                };
                if self.rng.percent(50) {
                    vec![b'd'; n]
                } else {
                    self.rng.bytes(n)
                }
            }
            _ if self.rng.percent(5) => {
                let n = self.rng.small(600);
                self.rng.bytes(n)
            }
            _ => Vec::new(),
        }
    }

    /// A header with random but mostly well-formed fields.
    fn header(
        &mut self,
        format: Format,
        kind: u8,
        name: &[u8],
        link: &[u8],
        data_len: usize,
    ) -> tar::Header {
        let mut h = match format {
            Format::Gnu => tar::Header::new_gnu(),
            Format::Ustar => tar::Header::new_ustar(),
            Format::Old => tar::Header::new_old(),
        };
        h.as_old_mut().linkflag = [kind];
        let mode = match self.rng.below(10) {
            0 => self.rng.next() as u32,
            1 => self.rng.next() as u32 & 0o7777,
            _ => *self.rng.pick(&[
                0o644, 0o755, 0, 0o777, 0o7777, 0o4755, 0o1777, 0o200, 0o500, 0o100,
            ]),
        };
        h.set_mode(mode);
        let own = nix::unistd::geteuid().as_raw();
        let uid = self.owner(own);
        let gid = self.owner(own);
        h.set_uid(uid);
        h.set_gid(gid);
        match self.rng.below(100) {
            0 => h.as_old_mut().mtime = [0xff; 12], // base-256 -1
            1 => h.set_mtime(self.rng.next()),
            2 => h.set_mtime(u64::MAX),
            _ => h.set_mtime(*self.rng.pick(&[0, 1_600_000_000, 1 << 33, i64::MAX as u64])),
        }
        let size = match self.rng.below(25) {
            0 => data_len as u64 + self.rng.between(1, 4096) as u64,
            1 => (data_len as u64).saturating_sub(self.rng.between(1, 600) as u64),
            2 => *self.rng.pick(&[1 << 33, 1 << 40, u64::MAX]),
            _ => data_len as u64,
        };
        h.set_size(size);
        if matches!(kind, b'3' | b'4') || self.rng.percent(5) {
            if let Some(ustar) = h.as_ustar_mut() {
                octal(&mut ustar.dev_major, self.rng.next() % 4096);
                octal(&mut ustar.dev_minor, self.rng.next() % (1 << 20));
            }
        }
        set_field(&mut h.as_old_mut().name, name);
        set_field(&mut h.as_old_mut().linkname, link);
        if format == Format::Ustar && self.rng.percent(10) {
            // a name split over the prefix field
            if let Some(ustar) = h.as_ustar_mut() {
                let prefix = self.relative();
                set_field(&mut ustar.prefix, &prefix);
            }
        }
        if self.rng.percent(3) {
            // garbage in one numeric field
            let old = h.as_old_mut();
            let field: &mut [u8] = match self.rng.below(5) {
                0 => &mut old.mode,
                1 => &mut old.uid,
                2 => &mut old.size,
                3 => &mut old.mtime,
                _ => &mut old.cksum,
            };
            let len = field.len();
            field.copy_from_slice(&self.rng.bytes(len));
        }
        h
    }

    /// Mostly the unpacking user, sometimes another, rarely one that does
    /// not fit a uid (which rejects the layer before anything else is tried).
    fn owner(&mut self, own: u32) -> u64 {
        match self.rng.below(40) {
            0..=3 => 0,
            4 | 5 => 65_534,
            6 => u64::from(u32::MAX),
            7 => 1 << 32,
            8 => self.rng.next(),
            _ => u64::from(own),
        }
    }

    /// A GNU sparse map with small holes (a huge hole would write that many
    /// zero bytes: see `expanded_size`).
    fn sparse_map(&mut self, header: &mut tar::Header, data_len: usize) {
        let Some(gnu) = header.as_gnu_mut() else {
            return;
        };
        let blocks = self.rng.between(0, 4);
        let mut offset = 0u64;
        let mut left = data_len as u64;
        for block in gnu.sparse.iter_mut().take(blocks) {
            offset += self.rng.small(4096) as u64 * if self.rng.percent(50) { 512 } else { 1 };
            let len = if left > 0 {
                self.rng.below(left as usize + 1) as u64
            } else {
                0
            };
            left -= len;
            octal(&mut block.offset, offset);
            octal(&mut block.numbytes, len);
            offset += len;
        }
        let real = match self.rng.below(4) {
            0 => offset + self.rng.small(4096) as u64,
            _ => offset,
        };
        octal(&mut gnu.realsize, real);
        if self.rng.percent(5) {
            gnu.isextended = [1];
        }
    }

    fn extension(&mut self, typ: u8, name: &[u8], data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().linkflag = [typ];
        set_field(&mut h.as_old_mut().name, name);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        self.push(&h, data);
    }

    fn push(&mut self, header: &tar::Header, data: &[u8]) {
        let at = self.out.len();
        self.out.extend_from_slice(header.as_bytes());
        if self.rng.below(200) != 0 {
            fix_checksum(&mut self.out[at..at + 512]);
        }
        self.headers.push(at);
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }
}

fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a.is_empty() {
        return b.to_vec();
    }
    let mut p = a.to_vec();
    p.push(b'/');
    p.extend_from_slice(b);
    p
}

fn set_field(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Writes `value` as NUL-terminated octal, as much as fits.
fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:o}");
    let room = field.len() - 1;
    let text = &text.as_bytes()[text.len().saturating_sub(room)..];
    field.fill(b'0');
    let start = room - text.len();
    field[start..room].copy_from_slice(text);
    field[room] = 0;
}

/// Sets the checksum of a 512-byte header block.
fn fix_checksum(block: &mut [u8]) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
}

/// Byte-level damage to a generated tar: flips, overwritten bytes, a cut;
/// checksums are usually fixed afterwards so that the damage gets past them.
fn damage(rng: &mut Rng, tar: &mut [u8], headers: &[usize]) {
    if tar.is_empty() {
        return;
    }
    for _ in 0..rng.between(1, 8) {
        let at = match headers.get(rng.below(headers.len() + 1)) {
            // inside a header, where the fields are
            Some(&h) if h + 512 <= tar.len() => h + rng.below(512),
            _ => rng.below(tar.len()),
        };
        if rng.percent(50) {
            tar[at] ^= 1 << rng.below(8);
        } else {
            tar[at] = *rng.pick(b"\x00\xff01234567 x/.\x80");
        }
    }
    if rng.percent(70) {
        for &h in headers {
            if h + 512 <= tar.len() {
                fix_checksum(&mut tar[h..h + 512]);
            }
        }
    }
}

/// The generated input of one iteration: the bytes the unpacker reads and
/// how they are said to be compressed.
struct LayerInput {
    bytes: Vec<u8>,
    compression: Compression,
    /// The tar inside, when the bytes are an undamaged compression of it.
    plain: Option<Vec<u8>>,
}

fn layer_input(rng: &mut Rng, parent: &Path) -> LayerInput {
    let generator = LayerGen {
        rng,
        parent: parent.as_os_str().as_bytes().to_vec(),
        out: Vec::new(),
        headers: Vec::new(),
        names: Vec::new(),
        through: None,
    };
    let (mut tar, headers) = generator.archive();
    if rng.percent(30) {
        damage(rng, &mut tar, &headers);
    }
    if rng.percent(8) {
        let cut = rng.below(tar.len() + 1);
        tar.truncate(cut);
    }
    let mut input = match rng.below(10) {
        0..=6 => LayerInput {
            bytes: tar,
            compression: Compression::None,
            plain: None,
        },
        7 | 8 => gzip_input(rng, tar),
        _ => {
            let level = *rng.pick(&[
                ruzstd::encoding::CompressionLevel::Fastest,
                ruzstd::encoding::CompressionLevel::Uncompressed,
            ]);
            let mut bytes = ruzstd::encoding::compress_to_vec(&tar[..], level);
            if rng.percent(20) {
                let cut = rng.below(bytes.len() + 1);
                bytes.truncate(cut);
            }
            LayerInput {
                bytes,
                compression: Compression::Zstd,
                plain: Some(tar),
            }
        }
    };
    if rng.percent(3) {
        // the media type lies about the compression
        input.compression = *rng.pick(&[Compression::None, Compression::Gzip, Compression::Zstd]);
    }
    input
}

fn gzip_input(rng: &mut Rng, tar: Vec<u8>) -> LayerInput {
    let members = if rng.percent(20) { 2 } else { 1 };
    let split = if members == 2 {
        rng.below(tar.len() + 1)
    } else {
        tar.len()
    };
    let mut bytes = Vec::new();
    for part in [&tar[..split], &tar[split..]].into_iter().take(members) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(part).expect("gzip");
        bytes.extend(gz.finish().expect("gzip"));
    }
    let damaged = rng.percent(25);
    if damaged {
        if rng.percent(50) {
            let cut = rng.below(bytes.len() + 1);
            bytes.truncate(cut);
        } else {
            for _ in 0..rng.between(1, 4) {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
        }
    }
    LayerInput {
        bytes,
        compression: Compression::Gzip,
        plain: (!damaged).then_some(tar),
    }
}

/// What the sparse entries of an input would write: the sum of their sizes
/// as the tar crate reads them. A GNU sparse entry can describe terabytes of
/// holes in a few bytes, and the unpacker writes holes as zeros (size bounds
/// are a separate task), so such inputs are not run. Every other entry's
/// data is in the stream itself.
fn expanded_size(input: &LayerInput) -> u64 {
    let plain: Vec<u8> = match (&input.plain, input.compression) {
        (Some(plain), _) => plain.clone(),
        (None, Compression::Gzip) => {
            let mut out = Vec::new();
            let _ = flate2::read::MultiGzDecoder::new(&input.bytes[..])
                .take(64 << 20)
                .read_to_end(&mut out);
            out
        }
        (None, _) => input.bytes.clone(),
    };
    let mut archive = tar::Archive::new(&plain[..]);
    let Ok(entries) = archive.entries() else {
        return 0;
    };
    let mut total = 0u64;
    for entry in entries {
        match entry {
            Ok(entry) if entry.header().entry_type().is_gnu_sparse() => {
                total = total.saturating_add(entry.size());
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    total
}

/// Entries whose size sum exceeds this are skipped (see [`expanded_size`]).
const MAX_EXPANDED: u64 = 32 << 20;

/// A parent directory holding the layer directory `target` and a sibling
/// `outside/secret` that no unpack may touch.
struct Sandbox {
    parent: PathBuf,
}

const SECRET: &[u8] = b"secret\n";

impl Sandbox {
    fn create(parent: PathBuf) -> Self {
        if parent.exists() {
            make_removable(&parent);
            fs::remove_dir_all(&parent).expect("remove old sandbox");
        }
        fs::create_dir(&parent).expect("create sandbox");
        fs::create_dir(parent.join("target")).expect("create target");
        fs::create_dir(parent.join("outside")).expect("create outside");
        let secret = parent.join("outside/secret");
        fs::write(&secret, SECRET).expect("write secret");
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).expect("chmod secret");
        Sandbox { parent }
    }

    fn target(&self) -> PathBuf {
        self.parent.join("target")
    }

    /// Nothing appeared beside `target` or beside the sandbox itself (where
    /// `../..` leads), and `outside/secret` is as it was.
    fn check_contained(&self) -> Result<(), String> {
        if let (Some(above), Some(own)) = (self.parent.parent(), self.parent.file_name()) {
            let beside = names_in(above);
            if beside != [own.to_string_lossy()] {
                return Err(format!("something appeared beside the sandbox: {beside:?}"));
            }
        }
        let top = names_in(&self.parent);
        if top != ["outside", "target"] {
            return Err(format!(
                "something appeared beside the layer directory: {top:?}"
            ));
        }
        let outside = names_in(&self.parent.join("outside"));
        if outside != ["secret"] {
            return Err(format!(
                "something appeared in the sibling directory: {outside:?}"
            ));
        }
        let secret = self.parent.join("outside/secret");
        let meta = fs::symlink_metadata(&secret).map_err(|e| format!("stat secret: {e}"))?;
        if !meta.is_file() || meta.nlink() != 1 || meta.mode() & 0o7777 != 0o600 {
            return Err(format!(
                "the sibling file changed: regular {}, {} links, mode {:o}",
                meta.is_file(),
                meta.nlink(),
                meta.mode() & 0o7777
            ));
        }
        let content = fs::read(&secret).map_err(|e| format!("read secret: {e}"))?;
        if content != SECRET {
            return Err(format!("the sibling file's content changed: {content:?}"));
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        make_removable(&self.parent);
        let _ = fs::remove_dir_all(&self.parent);
    }
}

/// Gives the owner `rwx` on every directory below `path` (an unprivileged
/// unpack leaves the tar's modes, 0000 included), never following symlinks.
fn make_removable(path: &Path) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            make_removable(&entry.path());
        }
    }
}

fn is_layer_name(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".tar") || name.ends_with(".tar.gz") || name.ends_with(".tar.zst")
}

fn replay_compression(path: &Path) -> Compression {
    let name = path.to_string_lossy();
    if name.ends_with(".gz") {
        Compression::Gzip
    } else if name.ends_with(".zst") {
        Compression::Zstd
    } else {
        Compression::None
    }
}

fn extension_of(compression: Compression) -> &'static str {
    match compression {
        Compression::None => ".tar",
        Compression::Gzip => ".tar.gz",
        Compression::Zstd => ".tar.zst",
    }
}

/// Unpacks `input` into a fresh sandbox and checks containment.
fn check_unpack(
    sandbox: &Sandbox,
    bytes: &[u8],
    compression: Compression,
) -> Result<String, String> {
    let target = sandbox.target();
    let result =
        catch(|| unpack_layer_with(bytes, compression, &target, UnpackOptions::unprivileged()))
            .map_err(|message| format!("panic: {message}"))?;
    sandbox.check_contained()?;
    match result {
        Ok(_) => Ok("ok".into()),
        Err(UnpackError::DecompressorPanicked) => Err("the decompressor thread panicked".into()),
        Err(error) => Ok(format!("error: {}", error_kind(&error))),
    }
}

/// The error's variant, with the detail that tells inputs apart.
fn error_kind(error: &UnpackError) -> String {
    match error {
        UnpackError::Header { field, .. } => format!("Header {field}"),
        UnpackError::Read { source, .. } => {
            let message = source.to_string();
            let head = message.split(':').next().unwrap_or_default();
            format!("Read ({})", head.chars().take(40).collect::<String>())
        }
        UnpackError::Syscall {
            syscall, source, ..
        } => format!("Syscall {syscall} {source}"),
        UnpackError::Hardlink { reason, .. } => format!("Hardlink {reason}"),
        other => {
            let debug = format!("{other:?}");
            debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_string()
        }
    }
}

#[test]
fn layer_unpacker_survives_hostile_tars_and_stays_in_its_directory() {
    let scratch = fast_scratch();
    let sandbox_path = scratch.path().join("s");
    if let Some(path) = replay_path() {
        if !is_layer_name(&path) {
            return;
        }
        let bytes = fs::read(&path).expect("read replay input");
        let sandbox = Sandbox::create(sandbox_path);
        let outcome = check_unpack(&sandbox, &bytes, replay_compression(&path));
        eprintln!("replay {}: {outcome:?}", path.display());
        assert!(outcome.is_ok(), "{outcome:?}");
        return;
    }
    let budget = Budget::from_env(LAYER_ITERS);
    let mut run = Run::new("layer", budget);
    let mut skipped = 0u64;
    for iteration in 0..budget.iters {
        let began = Instant::now();
        let mut rng = Rng::for_iteration(budget.seed, "layer", iteration);
        let input = layer_input(&mut rng, &sandbox_path);
        if expanded_size(&input) > MAX_EXPANDED {
            skipped += 1;
            run.count(iteration, began);
            continue;
        }
        let sandbox = Sandbox::create(sandbox_path.clone());
        match check_unpack(&sandbox, &input.bytes, input.compression) {
            Ok(outcome) => run.outcome(outcome),
            Err(what) => run.fail(iteration, extension_of(input.compression), what, |saved| {
                fs::write(saved, &input.bytes)
            }),
        }
        run.count(iteration, began);
        if run.should_stop() {
            break;
        }
    }
    if skipped > 0 {
        run.outcome(format!(
            "skipped: expands beyond {} MiB",
            MAX_EXPANDED >> 20
        ));
    }
    assert_mix(
        &run,
        &[
            "ok",
            "error: DotDot",
            "error: ThroughSymlink",
            "error: Hardlink",
            "error: Read",
        ],
    );
    run.finish();
}
