//! Crash consistency of `berth apply`, end to end as root: `kill -9` the
//! apply at 20 random points of multi-container applies (creating,
//! replacing, pruning), sometimes change the manifests before applying
//! again, then apply to completion. Every round must converge to exactly
//! the declared containers, each running under one shim, with nothing
//! leaked: runc containers, mounts, pinned namespaces, IPAM reservations,
//! CNI cache records, records, snapshots, runtime dirs, veths, iptables
//! rules. At the end `berth rm -f` of everything leaves none of them.
//!
//! The first kill lands in an apply from scratch (image import and unpack
//! included). The kill points come from a seeded PRNG: the seed is printed,
//! and `BERTH_CRASH_SEED=N` replays a run; `BERTH_CRASH_ROUNDS=N` runs N
//! rounds instead of 20 (to hunt for rare races).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::host;
use common::prereq;
use common::site::Site;

/// Kill points by default.
const ROUNDS: usize = 20;
/// Containers on the bridge network (the first publishes a port), then one
/// with `networkMode: none`.
const BRIDGED: usize = 4;

/// splitmix64: small, seedable, good enough to pick kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The manifests as the test last wrote them.
struct Crash {
    site: Site,
    names: Vec<String>,
    /// Which containers are declared.
    present: Vec<bool>,
    /// Each container's `GENERATION` env var: bumping it replaces it.
    generation: Vec<u32>,
    subnet_prefix: String,
    bridge: String,
    port: u16,
    seed: u64,
}

impl Crash {
    fn new(seed: u64) -> Crash {
        let site = Site::new("cr");
        let tag = site.tag.clone();
        let bridge = format!("b{tag}");
        site.own_bridge(&bridge);
        let subnet_prefix = format!("10.244.{}.", std::process::id() % 120);
        site.write(
            "network.yaml",
            &format!(
                "apiVersion: berth/v1\nkind: Network\nmetadata: {{name: net}}\n\
                 spec: {{bridge: {bridge}, subnet: {subnet_prefix}0/24, ipMasq: true}}\n"
            ),
        );
        let mut names: Vec<String> = (0..BRIDGED).map(|i| format!("c{i}-{tag}")).collect();
        names.push(format!("solo-{tag}"));
        let crash = Crash {
            present: vec![true; names.len()],
            generation: vec![0; names.len()],
            names,
            site,
            subnet_prefix,
            bridge,
            port: 50_000 + (std::process::id() % 10_000) as u16,
            seed,
        };
        for i in 0..crash.names.len() {
            crash.write(i);
        }
        crash
    }

    fn file(&self, i: usize) -> String {
        format!("{}.yaml", self.names[i])
    }

    fn write(&self, i: usize) {
        let name = &self.names[i];
        let network = match i {
            0 => format!(
                "  networks: [net]\n  ports: [{{containerPort: 80, hostPort: {}}}]\n",
                self.port
            ),
            i if i < BRIDGED => "  networks: [net]\n".to_string(),
            _ => "  networkMode: none\n".to_string(),
        };
        self.site.write(
            &self.file(i),
            &format!(
                "apiVersion: berth/v1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  \
                 image: oci-layout:../images/busybox\n  command: [sleep, \"100000\"]\n  \
                 env: {{GENERATION: \"{}\"}}\n  stopGracePeriod: 1s\n{network}",
                self.generation[i]
            ),
        );
    }

    /// Replaces every declared container (the longest apply there is).
    fn replace_all(&mut self) {
        for i in 0..self.names.len() {
            if self.present[i] {
                self.generation[i] += 1;
                self.write(i);
            }
        }
    }

    /// A random change: replace all, replace one, or remove (prune) or
    /// add back one container. Returns what it did and how much work the
    /// next apply has, in replaced containers (a removal or a creation is
    /// about half of a replacement).
    fn change(&mut self, rng: &mut Rng) -> (String, f64) {
        let declared = self.present.iter().filter(|p| **p).count();
        match rng.below(10) {
            0..=3 => {
                self.replace_all();
                ("replace all".into(), declared as f64)
            }
            4..=6 => {
                let i = self.pick_declared(rng);
                self.generation[i] += 1;
                self.write(i);
                (format!("replace {}", self.names[i]), 1.0)
            }
            _ => {
                let i = rng.below(self.names.len());
                if self.present[i] && declared > 1 {
                    self.present[i] = false;
                    self.site.remove(&self.file(i));
                    (format!("prune {}", self.names[i]), 0.5)
                } else {
                    self.present[i] = true;
                    self.write(i);
                    (format!("add {}", self.names[i]), 0.5)
                }
            }
        }
    }

    /// A random declared container.
    fn pick_declared(&self, rng: &mut Rng) -> usize {
        let candidates: Vec<usize> = (0..self.names.len()).filter(|i| self.present[*i]).collect();
        candidates[rng.below(candidates.len())]
    }

    fn desired(&self) -> Vec<String> {
        let mut names: Vec<String> = (0..self.names.len())
            .filter(|i| self.present[*i])
            .map(|i| self.names[i].clone())
            .collect();
        names.sort();
        names
    }

    fn bridged(&self) -> Vec<String> {
        let mut names: Vec<String> = (0..BRIDGED)
            .filter(|i| self.present[*i])
            .map(|i| self.names[i].clone())
            .collect();
        names.sort();
        names
    }

    /// Removes every container and the image (as on a fresh host); the
    /// manifests stay.
    fn wipe(&self) {
        for name in self.desired() {
            self.site.ok(&["rm", "-f", &name]);
        }
        let image = format!("oci-layout:{}", self.site.busybox_dir().display());
        self.site.ok(&["image", "rm", &image]);
        self.site.ok(&["gc"]);
    }

    /// Applies to completion; returns how long it took.
    fn apply(&self, context: &str) -> Duration {
        let started = Instant::now();
        let output = self
            .site
            .apply_command(&["--prune"])
            .stdin(Stdio::null())
            .output()
            .expect("berth runs");
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        eprint!("{stdout}");
        assert!(
            output.status.success()
                && (stdout.contains("converged") || stdout.contains("nothing to do")),
            "seed {}: {context}: apply did not converge ({}):\n{stdout}{}",
            self.seed,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        took
    }

    /// Starts an apply and SIGKILLs it after `delay`. True when it was
    /// still running at that point.
    fn apply_killed_after(&self, delay: Duration) -> bool {
        let mut child = self
            .site
            .apply_command(&["--prune"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("berth runs");
        std::thread::sleep(delay);
        let running = child.try_wait().expect("wait").is_none();
        child.kill().expect("SIGKILL the apply");
        child.wait().expect("reap the apply");
        running
    }

    /// Waits until every declared container runs, then until nothing but
    /// theirs is left (teardown of namespaces and shims is asynchronous).
    fn check(&self, context: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.site.ps().iter().all(|c| c["state"] == "running") {
            assert!(
                Instant::now() < deadline,
                "seed {}: {context}: not all containers run\n{}",
                self.seed,
                self.diagnosis()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_for_no_problems(context);
    }

    /// What a failure report shows: berth's, runc's and the shims' views.
    fn diagnosis(&self) -> String {
        let site = &self.site;
        let runc = std::process::Command::new("runc")
            .arg("--root")
            .arg(site.runc_root())
            .arg("list")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut text = format!(
            "berth ps:\n{}runc list:\n{runc}shims: {:?}\n",
            site.ok(&["ps", "-a"]),
            host::shims(&site.state())
        );
        for name in entries(&site.state().join("containers")) {
            let dir = site.state().join("containers").join(&name);
            text.push_str(&format!(
                "{name}: status {}\n  shim.log:\n{}",
                fs::read_to_string(dir.join("status.json")).unwrap_or_default(),
                fs::read_to_string(dir.join("shim.log")).unwrap_or_default()
            ));
        }
        text
    }

    fn wait_for_no_problems(&self, context: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let problems = self.problems();
            if problems.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "seed {}: {context}: the host does not match the manifests:\n  {}\n{}",
                self.seed,
                problems.join("\n  "),
                self.diagnosis()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Everything that differs from "exactly the declared containers, once each".
    fn problems(&self) -> Vec<String> {
        let site = &self.site;
        let desired = self.desired();
        let bridged = self.bridged();
        let mut problems = Vec::new();
        let mut expect = |what: &str, found: Vec<String>, wanted: &[String]| {
            if found != wanted {
                problems.push(format!("{what}: found {found:?}, want {wanted:?}"));
            }
        };

        let ps = site.ps();
        let listed = sorted(
            ps.iter()
                .filter_map(|c| c["id"].as_str().map(str::to_string)),
        );
        expect("berth ps", listed, &desired);
        let states: Vec<String> = ps
            .iter()
            .filter(|c| c["state"] != "running")
            .map(|c| format!("{} is {}", c["id"], c["state"]))
            .collect();
        expect("containers not running", states, &[]);
        expect("runc list", host::runc_list(&site.runc_root()), &desired);
        let shims = sorted(host::shims(&site.state()).into_iter().map(|(_, id)| id));
        expect("shims", shims, &desired);

        let mounts = sorted(
            host::mounts_under(site.path())
                .into_iter()
                .map(|(point, fstype)| format!("{} {fstype}", relative(&point, site.path()))),
        );
        let wanted_mounts = sorted(desired.iter().flat_map(|name| {
            [
                format!("state/containers/{name}/bundle/rootfs overlay"),
                format!("state/netns/{name} nsfs"),
            ]
        }));
        expect("mounts", mounts, &wanted_mounts);

        let netns = entries(&site.state().join("netns"));
        let (locks, pins): (Vec<String>, Vec<String>) =
            netns.into_iter().partition(|n| n.ends_with(".lock"));
        expect("pinned namespaces", pins, &desired);
        let stale_locks: Vec<String> = locks
            .into_iter()
            .filter(|lock| !desired.iter().any(|name| *lock == format!("{name}.lock")))
            .collect();
        expect("netns locks of containers that are gone", stale_locks, &[]);

        let (owners, ips) = self.reservations();
        expect("IPAM reservations (owners)", owners, &bridged);
        expect(
            "CNI cache",
            entries(&site.root().join("cni/results")),
            &bridged,
        );
        for name in &bridged {
            let records = entries(&site.root().join("cni/results").join(name));
            expect(
                &format!("CNI cache records of {name}"),
                records,
                &["net.json".to_string()],
            );
        }
        let records: Vec<String> = desired.iter().map(|n| format!("{n}.json")).collect();
        expect(
            "container records",
            entries(&site.root().join("containers")),
            &records,
        );
        expect(
            "network records",
            entries(&site.root().join("networks")),
            &["net.json".to_string()],
        );
        expect(
            "snapshots",
            entries(&site.root().join("snapshots/containers")),
            &desired,
        );
        expect(
            "runtime dirs",
            entries(&site.state().join("containers")),
            &desired,
        );
        expect(
            &format!("veths on {}", self.bridge),
            vec![host::links_on(&self.bridge).len().to_string()],
            &[bridged.len().to_string()],
        );

        let rules = host::iptables_rules_with(&site.tag);
        let owners = sorted(rules.iter().filter_map(|rule| {
            let id = rule.split("id: \\\"").nth(1)?.split('\\').next()?;
            Some(id.to_string())
        }));
        let stale: Vec<String> = owners
            .iter()
            .filter(|id| !bridged.contains(id))
            .cloned()
            .collect();
        expect("iptables rules of containers that are gone", stale, &[]);
        let addresses = sorted(
            host::iptables_rules_with(&self.subnet_prefix)
                .iter()
                // The network's own masquerade rule names its subnet.
                .filter(|rule| !rule.contains("berth network"))
                .flat_map(|rule| addresses_in(rule, &self.subnet_prefix)),
        );
        if !bridged.is_empty() {
            // Added once, whatever kills interrupted them.
            let count = host::network_rules_on(&self.bridge).len();
            expect(
                "the network's own rules",
                vec![count.to_string()],
                &["3".into()],
            );
        }
        let stale: Vec<String> = addresses
            .into_iter()
            .filter(|ip| !ips.contains(ip))
            .collect();
        expect("iptables rules of released addresses", stale, &[]);
        problems
    }

    /// host-local's reservations on the network: (owner of each, addresses).
    fn reservations(&self) -> (Vec<String>, BTreeSet<String>) {
        let dir = self.site.root().join("cni/ipam/net");
        let mut owners = Vec::new();
        let mut ips = BTreeSet::new();
        for file in entries(&dir) {
            if file == "lock" || file.starts_with("last_reserved_ip") {
                continue;
            }
            let owner = fs::read_to_string(dir.join(&file)).unwrap_or_default();
            owners.push(owner.lines().next().unwrap_or("").trim().to_string());
            ips.insert(file);
        }
        owners.sort();
        (owners, ips)
    }
}

fn sorted(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut items: Vec<String> = items.into_iter().collect();
    items.sort();
    items
}

/// The names in a directory, sorted (none when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    sorted(
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned()),
    )
}

fn relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Host addresses (not the network's `.0`) of `prefix` named in `text`.
fn addresses_in(text: &str, prefix: &str) -> Vec<String> {
    text.match_indices(prefix)
        .filter_map(|(at, _)| {
            let digits: String = text[at + prefix.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            (!digits.is_empty() && digits != "0").then(|| format!("{prefix}{digits}"))
        })
        .collect()
}

fn rounds() -> usize {
    std::env::var("BERTH_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(ROUNDS)
}

fn seed() -> u64 {
    std::env::var("BERTH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

#[test]
fn applies_killed_at_random_points_converge_without_leaks() {
    let test = "applies_killed_at_random_points_converge_without_leaks";
    if !prereq::require_apply(test) {
        return;
    }
    let seed = seed();
    eprintln!("{test}: seed {seed} (BERTH_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let mut crash = Crash::new(seed);

    // How long applies take here and now: from scratch, with nothing to do,
    // and replacing everything. A kill lands anywhere in the apply's
    // expected duration: start-up plus its share per container, scaled
    // down after a kill came too late and up after one came in time (the
    // host's load changes while the test runs).
    let first = crash.apply("first apply");
    crash.check("first apply");
    let idle = crash.apply("nothing to do");
    crash.replace_all();
    let all = crash.apply("replace all");
    crash.check("replace all");
    let per_replace = all.saturating_sub(idle) / crash.names.len() as u32;
    eprintln!("apply took {first:?} from scratch, {idle:?} idle, {all:?} replacing all");

    let rounds = rounds();
    let mut killed_midway = 0;
    let mut scale = 1.0;
    for round in 1..=rounds {
        let (change, expected) = if round == 1 {
            crash.wipe();
            ("from scratch".to_string(), first)
        } else {
            let (change, work) = crash.change(&mut rng);
            (change, idle + per_replace.mul_f64(work))
        };
        let delay = expected.mul_f64(scale * rng.unit());
        let midway = crash.apply_killed_after(delay);
        killed_midway += usize::from(midway);
        scale = if midway {
            f64::min(scale * 1.1, 2.0)
        } else {
            scale * 0.7
        };
        let mut context = format!(
            "round {round}: {change}, killed after {delay:?}{}",
            if midway { "" } else { " (it had finished)" }
        );
        if rng.below(3) == 0 {
            let (again, _) = crash.change(&mut rng);
            context.push_str(&format!(", then {again}"));
        }
        eprintln!("{context}");
        crash.apply(&context);
        crash.check(&context);
    }
    assert!(
        killed_midway >= rounds / 3,
        "seed {seed}: only {killed_midway} of {rounds} kills landed before the apply finished"
    );

    for name in crash.desired() {
        crash.site.ok(&["rm", "-f", &name]);
    }
    crash.present = vec![false; crash.names.len()];
    crash.wait_for_no_problems("after rm -f of everything");
    assert!(host::mounts_under(crash.site.path()).is_empty());
    let left: Vec<String> = host::iptables_rules_with(&crash.subnet_prefix)
        .into_iter()
        .filter(|rule| !rule.contains("berth network"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    // Unpacks and downloads a kill interrupted are garbage for `berth gc`.
    crash.site.ok(&["gc"]);
    for dir in ["snapshots/tmp", "content/ingest"] {
        let left = entries(&crash.site.root().join(dir));
        assert!(left.is_empty(), "seed {seed}: {dir} after gc: {left:?}");
    }
}
