//! Containers and Jobs as workloads: a Deployment (or a bare Pod) with a
//! Service for its published ports; a Job, or a CronJob when scheduled.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::object::{labels_and_annotations, meta, KubeObject};
use super::pod::{self, Template, CONTAINER_LABEL};
use super::{at, names, KubeError, Output};
use crate::manifest::{
    CompletionMode, ConcurrencyPolicy, ContainerManifest, JobManifest, JobRestartPolicy, Located,
    RestartPolicy,
};

/// berth reads schedules in UTC; a CronJob without a time zone follows
/// the controller manager's local one.
const SCHEDULE_TIME_ZONE: &str = "Etc/UTC";

/// The label every pod of a Job carries.
const JOB_LABEL: &str = "berth/job";

pub fn container(
    out: &mut Output,
    located: &Located,
    manifest: &ContainerManifest,
) -> Result<(), KubeError> {
    let name = &manifest.metadata.name;
    let (labels, annotations) = labels_and_annotations(
        out,
        located,
        &["metadata", "labels"],
        &manifest.metadata.labels,
    );
    let template = Template::new(located, manifest.spec.clone(), &["spec"], labels.clone());
    let restart = restart_policy(out, located, manifest);
    let parts = pod::pod_spec(out, &template, restart, false)?;
    let mut pod_labels = labels.clone();
    pod_labels.extend(parts.labels);
    pod_labels.insert(CONTAINER_LABEL.to_string(), name.clone());
    service(out, &template);
    let workload = if out.options.pods {
        KubeObject::Pod(Pod {
            metadata: meta(name, pod_labels, annotations),
            spec: Some(parts.spec),
            ..Pod::default()
        })
    } else {
        KubeObject::Deployment(Deployment {
            metadata: meta(name, labels, annotations),
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                selector: LabelSelector {
                    match_labels: Some(BTreeMap::from([(
                        CONTAINER_LABEL.to_string(),
                        name.clone(),
                    )])),
                    ..LabelSelector::default()
                },
                // A ReadWriteOnce claim cannot be mounted by the new pod
                // while the old one holds it.
                strategy: parts.has_claim.then(|| DeploymentStrategy {
                    type_: Some("Recreate".to_string()),
                    rolling_update: None,
                }),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(pod_labels),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(parts.spec),
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        })
    };
    out.objects.push(workload);
    Ok(())
}

/// The pod's restartPolicy. A Deployment's pods must restart `Always`, so
/// `never` and `on-failure` keep their meaning only in a bare Pod.
fn restart_policy(
    out: &mut Output,
    located: &Located,
    manifest: &ContainerManifest,
) -> &'static str {
    let restart = &manifest.spec.restart;
    let policy = match restart.policy {
        RestartPolicy::Always | RestartPolicy::UnlessStopped => "Always",
        RestartPolicy::OnFailure => "OnFailure",
        RestartPolicy::Never => "Never",
    };
    if restart.max_retries.is_some() {
        out.warn(
            located,
            &at(&["spec", "restart", "maxRetries"]),
            "Kubernetes restarts without a limit: maxRetries is left out",
        );
    }
    if restart.backoff.is_some() {
        out.warn(
            located,
            &at(&["spec", "restart", "backoff"]),
            "the kubelet's restart backoff is its own (10s doubling to 5m): backoff is left out",
        );
    }
    if policy != "Always" && !out.options.pods {
        out.warn(
            located,
            &at(&["spec", "restart", "policy"]),
            format!("a Deployment's pods always restart (restartPolicy Always): {policy} holds only in a bare Pod (export with --pods)"),
        );
        return "Always";
    }
    policy
}

/// A ClusterIP Service named as the container, so that other pods reach it
/// by the name they used under berth. Publishing on the host has no
/// portable counterpart: NodePort, LoadBalancer or Ingress is the
/// cluster's choice, said in a warning.
fn service(out: &mut Output, template: &Template) {
    let ports = pod::distinct_ports(&template.spec);
    if ports.is_empty() {
        return;
    }
    let name = &template.name;
    let service_name = if names::is_dns1035_label(name) {
        name.clone()
    } else {
        format!("s-{}", &name[..name.len().min(61)])
    };
    let published: Vec<String> = template
        .spec
        .ports
        .iter()
        .map(|p| {
            let ip = p.host_ip.map(|ip| format!("{ip}:")).unwrap_or_default();
            format!("{ip}{}->{}", p.effective_host_port(), p.container_port)
        })
        .collect();
    let renamed = if service_name == *name {
        String::new()
    } else {
        format!(" (a Service's name must start with a letter, so it is {service_name})")
    };
    out.warn(
        template.located,
        &template.path(&[crate::manifest::diagnostic::PathSegment::from("ports")]),
        format!(
            "ports published on the host ({}) become the ClusterIP Service {service_name}{renamed}, reached inside the cluster at {service_name}:PORT; reaching it from outside is the cluster's choice: a NodePort, a LoadBalancer or an Ingress",
            published.join(", ")
        ),
    );
    out.objects.push(KubeObject::Service(Service {
        metadata: meta(&service_name, template.labels.clone(), BTreeMap::new()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(BTreeMap::from([(
                CONTAINER_LABEL.to_string(),
                name.clone(),
            )])),
            ports: Some(
                ports
                    .into_iter()
                    .map(|(port, protocol)| ServicePort {
                        name: Some(pod::port_name(port, protocol)),
                        port: i32::from(port),
                        target_port: Some(IntOrString::Int(i32::from(port))),
                        protocol: Some(pod::protocol_name(protocol).to_string()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }));
}

pub fn job(out: &mut Output, located: &Located, manifest: &JobManifest) -> Result<(), KubeError> {
    let name = &manifest.metadata.name;
    let spec = &manifest.spec;
    let (labels, annotations) = labels_and_annotations(
        out,
        located,
        &["metadata", "labels"],
        &manifest.metadata.labels,
    );
    let container_spec = spec.template.to_container_spec();
    if !container_spec.ports.is_empty() {
        out.warn(
            located,
            &at(&["spec", "template", "ports"]),
            "a Job's pods get no Service: its published ports are left out",
        );
    }
    let template = Template::new(
        located,
        container_spec,
        &["spec", "template"],
        labels.clone(),
    );
    let restart = match spec.restart_policy {
        JobRestartPolicy::Never => "Never",
        JobRestartPolicy::OnFailure => "OnFailure",
    };
    let indexed = spec.completion_mode == CompletionMode::Indexed;
    let parts = pod::pod_spec(out, &template, restart, indexed)?;
    let mut pod_labels = labels.clone();
    pod_labels.extend(parts.labels);
    pod_labels.insert(JOB_LABEL.to_string(), name.clone());
    if spec.backoff.is_some() {
        out.warn(
            located,
            &at(&["spec", "backoff"]),
            "the Job controller's retry backoff is its own (10s doubling to 6m): backoff is left out",
        );
    }
    let job_spec = JobSpec {
        completions: Some(to_i32(spec.completions)),
        parallelism: Some(to_i32(spec.parallelism)),
        completion_mode: Some(format!("{:?}", spec.completion_mode)),
        backoff_limit: Some(to_i32(spec.backoff_limit)),
        active_deadline_seconds: spec.active_deadline.map(|d| names::whole_seconds(d, 1).0),
        ttl_seconds_after_finished: spec
            .ttl_after_finished
            .map(|d| i32::try_from(names::whole_seconds(d, 0).0).unwrap_or(i32::MAX)),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(pod_labels),
                ..ObjectMeta::default()
            }),
            spec: Some(parts.spec),
        },
        ..JobSpec::default()
    };
    let object = match &spec.schedule {
        None => KubeObject::Job(Job {
            metadata: meta(name, labels, annotations),
            spec: Some(job_spec),
            ..Job::default()
        }),
        Some(schedule) => KubeObject::CronJob(CronJob {
            metadata: meta(name, labels.clone(), annotations),
            spec: Some(CronJobSpec {
                schedule: schedule.to_string(),
                time_zone: Some(SCHEDULE_TIME_ZONE.to_string()),
                concurrency_policy: Some(
                    match spec.concurrency_policy {
                        ConcurrencyPolicy::Allow => "Allow",
                        ConcurrencyPolicy::Forbid => "Forbid",
                        ConcurrencyPolicy::Replace => "Replace",
                    }
                    .to_string(),
                ),
                successful_jobs_history_limit: Some(to_i32(spec.history_limit)),
                failed_jobs_history_limit: Some(to_i32(spec.history_limit)),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: (!labels.is_empty()).then_some(labels),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(job_spec),
                },
                ..CronJobSpec::default()
            }),
            ..CronJob::default()
        }),
    };
    out.objects.push(object);
    Ok(())
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
