//! The stop and remove protocols (`engine::stop::ShimControl`) against a
//! real shim on the fake OCI runtime: no root, no image, no network. Each
//! test starts `berth shim --dir` on a container whose init is an ordinary
//! process, then stops or removes it as `berth stop` and `berth rm` do.
//!
//! Bounds are generous (a busy machine must pass); tests assert what
//! happened and in which order, never how fast.

#[path = "common/fake_runtime.rs"]
mod fake_runtime;

use std::cell::Cell;
use std::fs;
use std::path::Path;
use std::time::Duration;

use berth::engine::stop::ShimControl;
use berth::engine::EngineError;
use berth::runtime::container_dir::Phase;
use berth::runtime::host::Host;
use berth::runtime::oci::OciRuntime;
use berth::runtime::process::ProcHost;
use fake_runtime::{wait_until, FakeContainer, Started, SIGKILL, SIGTERM};

/// Longer than any test should take: the grace period a test means never
/// to reach, and the bound on waits that only a hang exceeds.
const LONG: Duration = Duration::from_secs(120);

fn control(fx: &FakeContainer) -> ShimControl<'_> {
    ShimControl {
        id: &fx.id,
        dir: &fx.dir,
        runtime: &fx.runtime,
        host: &ProcHost,
    }
}

/// Nothing of the container runs: not the shim or anything in its process
/// group (its runtime calls), not the init (when the test saw it) or
/// anything in its process group.
fn assert_nothing_left(fx: &FakeContainer, shim: Started, init: Option<Started>) {
    assert!(!shim.alive(), "the shim still runs");
    assert_eq!(ProcHost.group_members(shim.pid), [0u32; 0], "shim's group");
    if let Some(init) = init {
        assert!(!init.alive(), "the container's init still runs");
        assert_eq!(ProcHost.group_members(init.pid), [0u32; 0], "init's group");
    }
    assert!(
        !fx.runtime.may_have(&fx.id),
        "the runtime still holds the container; calls: {:?}",
        fx.calls()
    );
}

/// An init that ignores SIGTERM and writes `DIR/trap-set` once its trap
/// is set: the shim signals the init itself, at once, so a stop sent
/// before would find a shell without the trap. With `noted`, it notes each
/// SIGTERM there, so it keeps a handler and waits in short sleeps (a child
/// that outlives a SIGKILL of the init by up to 50 ms: the fake runtime has
/// no pid namespace); without, it ignores it and becomes `sleep`.
fn term_ignoring_init(dir: &Path, noted: Option<&Path>) -> String {
    let ready = dir.join("trap-set");
    match noted {
        Some(file) => format!(
            "trap 'echo TERM >>{}' TERM\n: >{}\nwhile :; do sleep 0.05; done\n",
            file.display(),
            ready.display()
        ),
        None => format!("trap '' TERM\n: >{}\nexec sleep 3600\n", ready.display()),
    }
}

fn wait_for_trap(dir: &Path) {
    let set = dir.join("trap-set");
    wait_until(LONG, "the init's SIGTERM trap", || set.exists());
}

#[test]
fn stop_sends_the_stop_signal_and_the_container_exits_of_it() {
    let fx = FakeContainer::new("exec sleep 3600\n");
    let shim = fx.spawn_shim(&fx.config(LONG));
    let init = fx.wait_running();

    control(&fx).stop(LONG, Some(LONG));

    assert!(!shim.alive(), "stop returned with the shim running");
    assert!(!init.alive(), "stop returned with the container running");
    let status = fx.dir.read_status().unwrap().unwrap();
    assert_eq!(status.phase, Phase::Exited);
    assert!(status.stopped, "the exit is not recorded as a stop");
    assert_eq!(status.signal, Some(SIGTERM), "{status:?}");
    // The init is the shim's own child: the shim signalled it itself.
    let calls = fx.calls();
    assert!(!calls.iter().any(|c| c.starts_with("kill")), "{calls:?}");
    assert_nothing_left(&fx, shim, Some(init));
}

#[test]
fn sigkill_follows_the_grace_period_when_the_container_ignores_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let got_term = dir.path().join("got-term");
    let fx = FakeContainer::new(&term_ignoring_init(dir.path(), Some(&got_term)));
    let shim = fx.spawn_shim(&fx.config(Duration::from_millis(300)));
    let init = fx.wait_running();
    wait_for_trap(dir.path());

    // berth's own timeout far beyond the grace: the shim does the killing.
    control(&fx).stop(Duration::from_millis(300), Some(LONG));

    let status = fx.dir.read_status().unwrap().unwrap();
    assert_eq!(status.phase, Phase::Exited);
    // SIGTERM came first (the init noted it and went on), SIGKILL ended it.
    assert_eq!(status.signal, Some(SIGKILL), "{status:?}");
    assert_eq!(fs::read_to_string(&got_term).unwrap(), "TERM\n");
    wait_until(LONG, "the init's last sleep", || {
        ProcHost.group_members(init.pid).is_empty()
    });
    assert_nothing_left(&fx, shim, Some(init));
}

#[test]
fn past_its_timeout_stop_kills_the_container_itself_and_lets_the_shim_record_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    let fx = FakeContainer::new(&term_ignoring_init(dir.path(), None));
    // The shim's grace outlasts the test: only berth's SIGKILL can end it.
    let shim = fx.spawn_shim(&fx.config(LONG));
    let init = fx.wait_running();
    wait_for_trap(dir.path());

    control(&fx).stop(LONG, Some(Duration::from_millis(200)));

    assert!(!shim.alive());
    // The shim was not killed first: it lived to record the exit.
    let status = fx.dir.read_status().unwrap().unwrap();
    assert_eq!(status.phase, Phase::Exited, "{}", fx.shim_log());
    assert_eq!(status.signal, Some(SIGKILL), "{status:?}");
    assert_nothing_left(&fx, shim, Some(init));
}

#[test]
fn force_remove_of_a_running_container_kills_shim_and_container_and_leaves_no_process() {
    let fx = FakeContainer::new("trap '' TERM\nexec sleep 3600\n");
    let shim = fx.spawn_shim(&fx.config(LONG));
    let init = fx.wait_running();
    let control = control(&fx);

    // As `berth rm --force` does: note the shim, stop at once, remove.
    let live_shim = control.live_shim();
    assert_eq!(live_shim.map(|s| s.pid), Some(shim.pid));
    control.stop(LONG, Some(Duration::ZERO));
    let torn_down = Cell::new(false);
    let lock = control
        .remove(live_shim, || {
            torn_down.set(true);
            Ok::<(), EngineError>(())
        })
        .unwrap();

    assert!(torn_down.get());
    assert!(lock.is_some(), "no shim may hold the lock after remove");
    assert_nothing_left(&fx, shim, Some(init));
}

#[test]
fn remove_kills_a_shim_that_is_not_finishing_and_its_container_before_teardown() {
    let fx = FakeContainer::new("exec sleep 3600\n");
    let shim = fx.spawn_shim(&fx.config(LONG));
    let init = fx.wait_running();
    let control = control(&fx);

    // A live shim whose status is not Exited is stuck, as far as remove
    // knows: it goes, and the container with it, before the teardown.
    let live_shim = control.live_shim();
    let lock = control
        .remove(live_shim, || {
            assert!(!shim.alive(), "teardown with the shim running");
            assert!(!init.alive(), "teardown with the container running");
            Ok::<(), EngineError>(())
        })
        .unwrap();

    assert!(lock.is_some());
    let calls = fx.calls();
    assert!(
        calls.contains(&format!("delete --force {}", fx.id)),
        "{calls:?}"
    );
    assert_nothing_left(&fx, shim, Some(init));
}

#[test]
fn remove_tears_down_while_a_finishing_shim_deletes_then_waits_for_it() {
    let fx = FakeContainer::new("exit 0\n");
    fx.hold_delete();
    let shim = fx.spawn_shim(&fx.config(LONG));
    // The init exits at once; the shim records it and holds in its last
    // act, the runtime delete.
    fx.wait_status("the exit", |s| s.phase == Phase::Exited);
    wait_until(LONG, "the shim's delete", || {
        fx.call_index(&format!("delete --force {}", fx.id))
            .is_some()
    });
    let control = control(&fx);

    let live_shim = control.live_shim();
    let lock = control
        .remove(live_shim, || {
            assert!(shim.alive(), "a finishing shim was not let finish");
            fx.release_delete();
            Ok::<(), EngineError>(())
        })
        .unwrap();

    assert!(lock.is_some());
    // It finished rather than being killed: its delete went through.
    assert!(!shim.alive());
    assert!(!fx.runtime.may_have(&fx.id), "{:?}", fx.calls());
    assert_nothing_left(&fx, shim, None);
}

#[test]
fn a_dead_shim_is_handled_stop_returns_and_remove_deletes_its_container() {
    let fx = FakeContainer::new("exec sleep 3600\n");
    let shim = fx.spawn_shim(&fx.config(LONG));
    let init = fx.wait_running();
    shim.kill();
    wait_until(LONG, "the shim to die", || !shim.alive());
    let control = control(&fx);

    // Nothing to ask: stop returns without waiting.
    assert_eq!(control.live_shim(), None);
    control.stop(LONG, None);
    let lock = control.remove(None, || Ok::<(), EngineError>(())).unwrap();

    assert!(lock.is_some());
    let calls = fx.calls();
    assert!(
        calls.contains(&format!("delete --force {}", fx.id)),
        "{calls:?}"
    );
    assert_nothing_left(&fx, shim, Some(init));
}
