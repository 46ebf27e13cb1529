//! What berth keeps of a Job under `--root` (`jobs/<name>.json`): its
//! current run (which spec it runs, its phase, every attempt with its
//! container and exit code) and a bounded history of earlier runs. The
//! record outlives the Job's containers (`ttlAfterFinished` removes those,
//! never the record), so a finished Job applied again does nothing.

use serde::{Deserialize, Serialize};

use crate::state::labels::Fingerprint;
use crate::state::records::RecordStore;
use crate::state::Layout;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobPhase {
    #[default]
    Active,
    Complete,
    Failed,
}

impl JobPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            JobPhase::Active => "active",
            JobPhase::Complete => "complete",
            JobPhase::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttemptState {
    Running,
    Succeeded,
    Failed,
    /// Stopped by berth: the Job finished, failed or was replaced first.
    Stopped,
}

/// One container a run started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// The container: `JOB-RUN-NUMBER`.
    pub id: String,
    /// 1, 2, ... within the run.
    pub number: u32,
    /// Its completion index (`BERTH_JOB_INDEX`), in Indexed mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    pub started_unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_unix_ms: Option<u64>,
    pub state: AttemptState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Restarts in place (restartPolicy OnFailure): each is a failure.
    #[serde(default)]
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A finished run, kept in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub run: u32,
    pub phase: JobPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub trigger: String,
    pub started_unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_unix_ms: Option<u64>,
    pub succeeded: u32,
    pub failed: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    pub name: String,
    /// The manifest set that declares it.
    pub source: String,
    pub file: String,
    /// The spec the current run runs.
    pub fingerprint: Fingerprint,
    /// 1, 2, ...: a new run for a changed spec, a schedule tick or `berth
    /// job run`.
    pub run: u32,
    pub phase: JobPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What started the run: apply, schedule, manual.
    pub trigger: String,
    pub started_unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_unix_ms: Option<u64>,
    pub attempts: Vec<Attempt>,
    /// `ttlAfterFinished` removed the run's containers.
    #[serde(default)]
    pub cleaned: bool,
    /// The schedule tick (unix seconds) the last run was started for or
    /// that was skipped (Forbid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_tick: Option<u64>,
    /// When the Job was first declared: a schedule never runs a tick from
    /// before it.
    #[serde(default)]
    pub declared_unix_ms: u64,
    #[serde(default)]
    pub history: Vec<RunSummary>,
    /// `berth job run` asked for a new run (unix ms): the next pass begins it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_requested: Option<u64>,
    /// The spec's `completions`, so that `berth jobs` can say "2 of 3"
    /// from the record alone (0 in records from before it was kept).
    #[serde(default)]
    pub completions: u32,
    /// The spec's cron schedule as written, so that `berth jobs` can name
    /// the next run from the record alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

impl JobRecord {
    /// Attempts that exited 0; in Indexed mode (its attempts carry an
    /// index, a run never mixes the two) each index counts once.
    pub fn succeeded(&self) -> u32 {
        let mut indexes = Vec::new();
        let mut unindexed = 0;
        for attempt in self
            .attempts
            .iter()
            .filter(|a| a.state == AttemptState::Succeeded)
        {
            match attempt.index {
                Some(index) => indexes.push(index),
                None => unindexed += 1,
            }
        }
        indexes.sort_unstable();
        indexes.dedup();
        indexes.len() as u32 + unindexed
    }

    /// Failed attempts, and every restart in place (each was a failure).
    pub fn failed(&self) -> u32 {
        self.attempts
            .iter()
            .map(|a| a.restarts + u32::from(a.state == AttemptState::Failed))
            .sum()
    }

    pub fn running(&self) -> impl Iterator<Item = &Attempt> {
        self.attempts
            .iter()
            .filter(|a| a.state == AttemptState::Running)
    }

    /// ` in 8.2s` once the run finished, else nothing: for summary lines.
    pub fn took(&self) -> String {
        self.finished_unix_ms
            .map(|end| {
                format!(
                    " in {:.1}s",
                    end.saturating_sub(self.started_unix_ms) as f64 / 1000.0
                )
            })
            .unwrap_or_default()
    }

    pub fn summary(&self) -> RunSummary {
        RunSummary {
            run: self.run,
            phase: self.phase,
            reason: self.reason.clone(),
            trigger: self.trigger.clone(),
            started_unix_ms: self.started_unix_ms,
            finished_unix_ms: self.finished_unix_ms,
            succeeded: self.succeeded(),
            failed: self.failed(),
        }
    }
}

/// The container of attempt `number` of run `run` of Job `job`.
pub fn attempt_id(job: &str, run: u32, number: u32) -> String {
    format!("{job}-{run}-{number}")
}

pub fn store(layout: &Layout) -> RecordStore<JobRecord> {
    RecordStore::new(layout.job_records(), "job")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_written_before_completions_and_schedule_were_kept_still_parses() {
        let old = r#"{"name":"batch","source":"/srv","file":"batch.yaml",
            "fingerprint":{"parts":{}},"run":1,"phase":"complete","trigger":"apply",
            "startedUnixMs":1000,"attempts":[]}"#;
        let record: JobRecord = serde_json::from_str(old).expect("an old record parses");
        assert_eq!(record.completions, 0);
        assert_eq!(record.schedule, None);
    }
}
