//! `berth jobs [-o json]`: every Job berth keeps a record of, with its
//! current run, how it stands, how many attempts succeeded and failed,
//! when the run started and finished, the next scheduled run and why. Read
//! from the Jobs' records alone, as `ps` reads containers': no daemon is
//! needed.

use std::process::ExitCode;

use serde::Serialize;

use super::{print_table, GlobalOptions, OutputFormat};
use crate::manifest::cron::CronSchedule;
use crate::reconcile::jobs::record::{self, Attempt, JobRecord, RunSummary};
use crate::reconcile::schedule::next_run;
use crate::runtime::logs::format_seconds;
use crate::state::clock::unix_ms;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// One Job as `berth jobs` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRow<'a> {
    pub name: &'a str,
    /// 0 for a scheduled Job that has not run yet.
    pub run: u32,
    /// active, complete, failed, or scheduled (no run yet).
    pub status: &'static str,
    pub succeeded: u32,
    /// What the spec asks for (0 in records from before it was kept).
    pub completions: u32,
    pub failed: u32,
    /// RFC 3339, to the second.
    pub started: Option<String>,
    pub finished: Option<String>,
    /// The next schedule tick, for a scheduled Job.
    pub next: Option<String>,
    pub reason: Option<&'a str>,
    /// What started the run: apply, schedule, ...
    pub trigger: &'a str,
    pub source: &'a str,
    pub file: &'a str,
    pub attempts: &'a [Attempt],
    pub history: &'a [RunSummary],
}

/// `2026-12-02T06:12:03Z`: seconds are enough for people and scripts.
pub fn when(unix_ms: u64) -> String {
    format_seconds(unix_ms)
}

/// `scheduled` before a scheduled Job's first run, else the run's phase.
pub fn status(record: &JobRecord) -> &'static str {
    if record.run == 0 {
        "scheduled"
    } else {
        record.phase.as_str()
    }
}

/// Attempts of an Indexed Job carry their index; the record keeps no
/// other trace of the completion mode, and an Indexed Job's successes are
/// counted once per index.
/// The next tick after `now_ms` of the schedule the record carries, in
/// unix ms; None without a schedule, or with none ahead.
pub fn next_tick(record: &JobRecord, now_ms: u64) -> Option<u64> {
    let schedule: CronSchedule = record.schedule.as_deref()?.parse().ok()?;
    next_run(&schedule, now_ms / 1000).map(|secs| secs * 1000)
}

/// The row of `record` at `now_ms` (for the next tick).
pub fn row(record: &JobRecord, now_ms: u64) -> JobRow<'_> {
    let ran = record.run > 0;
    JobRow {
        name: &record.name,
        run: record.run,
        status: status(record),
        succeeded: record.succeeded(),
        completions: record.completions,
        failed: record.failed(),
        started: ran.then(|| when(record.started_unix_ms)),
        finished: record.finished_unix_ms.filter(|_| ran).map(when),
        next: next_tick(record, now_ms).map(when),
        reason: record.reason.as_deref(),
        trigger: &record.trigger,
        source: &record.source,
        file: &record.file,
        attempts: &record.attempts,
        history: &record.history,
    }
}

/// `2/3`: succeeded of the completions asked for; the bare count when the
/// record does not say how many (written by an older berth).
fn succeeded_cell(row: &JobRow) -> String {
    if row.completions > 0 {
        format!("{}/{}", row.succeeded, row.completions)
    } else {
        row.succeeded.to_string()
    }
}

fn text_cells(row: &JobRow) -> Vec<String> {
    let or_dash = |cell: &Option<String>| cell.clone().unwrap_or_else(|| "-".to_string());
    vec![
        row.name.to_string(),
        row.run.to_string(),
        row.status.to_string(),
        succeeded_cell(row),
        row.failed.to_string(),
        or_dash(&row.started),
        or_dash(&row.finished),
        or_dash(&row.next),
        row.reason.unwrap_or_default().to_string(),
    ]
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let records = record::store(&global.paths()).list()?;
    let now = unix_ms();
    let rows: Vec<JobRow> = records.iter().map(|r| row(r, now)).collect();
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            super::output::print_structured(args.output, &rows)?
        }
        OutputFormat::Text => print_table(
            &[
                "NAME",
                "RUN",
                "STATUS",
                "SUCCEEDED",
                "FAILED",
                "STARTED",
                "FINISHED",
                "NEXT",
                "REASON",
            ],
            &rows.iter().map(text_cells).collect::<Vec<_>>(),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::jobs::record::{AttemptState, JobPhase};

    /// 2025-06-10T12:00:00Z, a Tuesday.
    const NOON_MS: u64 = 1_749_556_800_000;

    fn attempt(number: u32, index: Option<u32>, state: AttemptState) -> Attempt {
        Attempt {
            id: format!("batch-1-{number}"),
            number,
            index,
            started_unix_ms: NOON_MS,
            finished_unix_ms: Some(NOON_MS + 2_000),
            state,
            exit_code: Some(i32::from(state != AttemptState::Succeeded)),
            restarts: 0,
            reason: None,
        }
    }

    fn record(run: u32, phase: JobPhase, attempts: Vec<Attempt>) -> JobRecord {
        JobRecord {
            name: "batch".into(),
            source: "/srv".into(),
            file: "batch.yaml".into(),
            fingerprint: Default::default(),
            run,
            phase,
            reason: None,
            trigger: "apply".into(),
            started_unix_ms: NOON_MS + 999,
            finished_unix_ms: Some(NOON_MS + 3_500),
            attempts,
            cleaned: false,
            schedule_tick: None,
            declared_unix_ms: NOON_MS,
            history: Vec::new(),
            run_requested: None,
            completions: 2,
            schedule: None,
        }
    }

    #[test]
    fn times_are_rfc3339_to_the_second() {
        assert_eq!(when(NOON_MS + 999), "2025-06-10T12:00:00Z");
    }

    #[test]
    fn a_finished_run_shows_its_counts_and_times_and_no_next_run() {
        let done = record(
            1,
            JobPhase::Complete,
            vec![
                attempt(1, None, AttemptState::Succeeded),
                attempt(2, None, AttemptState::Failed),
                attempt(3, None, AttemptState::Succeeded),
            ],
        );
        let row = row(&done, NOON_MS);
        assert_eq!(
            text_cells(&row),
            [
                "batch",
                "1",
                "complete",
                "2/2",
                "1",
                "2025-06-10T12:00:00Z",
                "2025-06-10T12:00:03Z",
                "-",
                ""
            ]
        );
    }

    #[test]
    fn an_indexed_job_counts_each_index_once() {
        let done = record(
            1,
            JobPhase::Active,
            vec![
                attempt(1, Some(0), AttemptState::Succeeded),
                attempt(2, Some(0), AttemptState::Succeeded),
            ],
        );
        assert_eq!(row(&done, NOON_MS).succeeded, 1);
    }

    #[test]
    fn a_scheduled_job_that_never_ran_says_scheduled_and_its_next_tick() {
        let mut waiting = record(0, JobPhase::Complete, Vec::new());
        waiting.finished_unix_ms = None;
        waiting.schedule = Some("*/15 * * * *".into());
        waiting.reason = Some("scheduled: waits for its next tick".into());
        let row = row(&waiting, NOON_MS + 60_000);
        assert_eq!(row.status, "scheduled");
        assert_eq!(row.started, None);
        assert_eq!(row.next.as_deref(), Some("2025-06-10T12:15:00Z"));
    }

    #[test]
    fn a_record_without_completions_shows_the_bare_count() {
        let mut old = record(
            1,
            JobPhase::Complete,
            vec![attempt(1, None, AttemptState::Succeeded)],
        );
        old.completions = 0;
        assert_eq!(text_cells(&row(&old, NOON_MS))[3], "1");
    }

    #[test]
    fn json_rows_carry_attempts_and_history() {
        let done = record(
            2,
            JobPhase::Failed,
            vec![attempt(1, None, AttemptState::Failed)],
        );
        let value = serde_json::to_value(row(&done, NOON_MS)).unwrap();
        assert_eq!(value["status"], "failed");
        assert_eq!(value["attempts"][0]["id"], "batch-1-1");
        assert!(value["history"].is_array());
        assert_eq!(value["next"], serde_json::Value::Null);
    }
}
