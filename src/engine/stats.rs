//! What a running container does, read from the host: the processes in
//! its cgroup (`berth top`) and what they use (`berth stats`).
//!
//! A sample is one read of the container's cgroup and of its network
//! namespace's counters; CPU use is a rate, so [`ContainerStats`] comes
//! from two samples (see [`ContainerStats::between`]).

use std::time::Instant;

use serde::Serialize;

use super::record::ContainerRecord;
use super::{Engine, EngineError};
use crate::manifest::NetworkMode;
use crate::runtime::cgroup_stats::{cpu_percent, CgroupUsage, Cgroups};
use crate::runtime::procfs::{ticks_per_second, NetCounters, ProcessRow, Procfs};

/// One read of a container's counters.
#[derive(Debug, Clone)]
pub struct Sample {
    pub id: String,
    pub usage: CgroupUsage,
    /// None on the host's network (its traffic is not the container's).
    pub net: Option<NetCounters>,
    pub at: Instant,
}

/// What `berth stats` shows of one container.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    pub name: String,
    /// Percent of one CPU between the two samples (200 is two CPUs busy);
    /// None when it could not be measured.
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    /// None without a limit.
    pub memory_limit_bytes: Option<u64>,
    pub pids: Option<u64>,
    /// Bytes received and sent on every interface but loopback, since the
    /// namespace was made; None on the host's network.
    pub net: Option<NetCounters>,
}

impl ContainerStats {
    /// The stats from two samples of one container, `after` taken last:
    /// its counters now, and its CPU use between them.
    pub fn between(before: &Sample, after: &Sample) -> ContainerStats {
        let elapsed = after.at.saturating_duration_since(before.at);
        ContainerStats {
            name: after.id.clone(),
            cpu_percent: cpu_percent(
                before.usage.cpu_ns,
                after.usage.cpu_ns,
                u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            ),
            memory_bytes: after.usage.memory_bytes,
            memory_limit_bytes: after.usage.memory_limit_bytes,
            pids: after.usage.pids,
            net: after.net,
        }
    }
}

impl Engine {
    /// The processes in a running container's cgroup, by host pid, in pid
    /// order. A process that ends while they are read is left out.
    pub fn top(&self, record: &ContainerRecord) -> Result<Vec<ProcessRow>, EngineError> {
        self.running_pid(record)?;
        let cgroup = self.paths.cgroup_path(&record.id);
        let mut pids = Cgroups::host()
            .procs(&cgroup)
            .map_err(|source| self.cgroup_error(record, source))?;
        pids.sort_unstable();
        let procfs = Procfs::default();
        let ticks = ticks_per_second();
        let mut rows = Vec::with_capacity(pids.len());
        for pid in pids {
            let row = procfs
                .process(pid, ticks)
                .map_err(|source| EngineError::Proc {
                    id: record.id.to_string(),
                    source: Box::new(source),
                })?;
            rows.extend(row);
        }
        Ok(rows)
    }

    /// A running container's counters now.
    pub fn sample(&self, record: &ContainerRecord) -> Result<Sample, EngineError> {
        let pid = self.running_pid(record)?;
        let usage = Cgroups::host()
            .usage(&self.paths.cgroup_path(&record.id))
            .map_err(|source| self.cgroup_error(record, source))?;
        let net = match record.spec.network_mode {
            NetworkMode::Host => None,
            NetworkMode::Bridge | NetworkMode::None => Procfs::default()
                .net_counters(pid)
                .map_err(|source| EngineError::Proc {
                    id: record.id.to_string(),
                    source: Box::new(source),
                })?,
        };
        Ok(Sample {
            id: record.id.to_string(),
            usage,
            net,
            at: Instant::now(),
        })
    }

    /// The host pid of a running container's init.
    fn running_pid(&self, record: &ContainerRecord) -> Result<u32, EngineError> {
        let view = self.view(record);
        match view.status.as_ref().and_then(|s| s.pid) {
            Some(pid) if view.is_running() => Ok(pid),
            _ => Err(EngineError::Invalid {
                id: record.id.to_string(),
                message: format!("it is not running ({})", view.state.as_str()),
            }),
        }
    }

    fn cgroup_error(
        &self,
        record: &ContainerRecord,
        source: crate::runtime::cgroup_stats::CgroupError,
    ) -> EngineError {
        EngineError::Cgroup {
            id: record.id.to_string(),
            source: Box::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sample(cpu_ns: u64, at: Instant) -> Sample {
        Sample {
            id: "web".into(),
            usage: CgroupUsage {
                cpu_ns: Some(cpu_ns),
                memory_bytes: Some(cpu_ns / 1000),
                memory_limit_bytes: None,
                pids: Some(1),
            },
            net: Some(NetCounters {
                rx_bytes: cpu_ns,
                tx_bytes: 0,
            }),
            at,
        }
    }

    #[test]
    fn stats_take_the_cpu_rate_between_samples_and_the_rest_from_the_last() {
        let start = Instant::now();
        let before = sample(1_000_000_000, start);
        let after = sample(1_250_000_000, start + Duration::from_secs(1));
        let stats = ContainerStats::between(&before, &after);
        assert_eq!(stats.cpu_percent, Some(25.0));
        assert_eq!(stats.memory_bytes, Some(1_250_000));
        assert_eq!(stats.net.map(|n| n.rx_bytes), Some(1_250_000_000));
        assert_eq!(stats.name, "web");
    }
}
