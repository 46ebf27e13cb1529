//! Unit tests per mapping: a small berth set in, the objects and warnings out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;
use crate::manifest::{self, LoadOptions, SourceFile};

/// Env files by absolute path.
#[derive(Default)]
struct MapFiles(BTreeMap<PathBuf, String>);

impl Files for MapFiles {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

const BASE: &str = "/srv/app";

fn set(yaml: &str) -> ManifestSet {
    let source = SourceFile {
        display: "app.yaml".to_string(),
        base_dir: PathBuf::from(BASE),
        text: yaml.to_string(),
    };
    manifest::load_sources(&[source], Vec::new(), "app.yaml", LoadOptions::default())
        .unwrap_or_else(|problems| panic!("invalid test set: {problems:?}"))
}

fn export_with(yaml: &str, options: &ExportOptions, files: &MapFiles) -> Export {
    export(&set(yaml), options, files).expect("export")
}

fn export_of(yaml: &str) -> Export {
    export_with(yaml, &ExportOptions::default(), &MapFiles::default())
}

/// The object of `kind` named `name`, as JSON.
fn object(export: &Export, kind: &str, name: &str) -> Value {
    let found = export
        .objects
        .iter()
        .find(|o| o.kind() == kind && o.name() == name)
        .unwrap_or_else(|| {
            let all: Vec<String> = export
                .objects
                .iter()
                .map(|o| format!("{} {}", o.kind(), o.name()))
                .collect();
            panic!("no {kind} {name} among {all:?}")
        });
    serde_json::to_value(found).expect("serialize")
}

fn kinds(export: &Export) -> Vec<String> {
    export
        .objects
        .iter()
        .map(|o| format!("{} {}", o.kind(), o.name()))
        .collect()
}

/// The warning whose text contains `needle`, as `file:line:col: path: message`.
fn warning(export: &Export, needle: &str) -> String {
    export
        .warnings
        .iter()
        .map(ToString::to_string)
        .find(|w| w.contains(needle))
        .unwrap_or_else(|| panic!("no warning mentions {needle:?}: {:#?}", export.warnings))
}

fn container_of(workload: &Value) -> &Value {
    workload
        .pointer("/spec/template/spec/containers/0")
        .expect("a pod template with a container")
}

const WEB: &str = "\
apiVersion: berth/v1
kind: Container
metadata:
  name: web
  labels: {app: shop}
spec:
  image: registry.example/web:1.2
  command: [httpd, -f]
  args: [-p, '8080']
  workingDir: /srv
";

#[test]
fn a_container_becomes_a_deployment_of_one_replica() {
    let export = export_of(WEB);
    assert_eq!(kinds(&export), ["Deployment web"]);
    let deployment = object(&export, "Deployment", "web");
    assert_eq!(deployment["apiVersion"], "apps/v1");
    assert_eq!(deployment["metadata"]["labels"], json!({"app": "shop"}));
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"],
        json!({"berth/container": "web"})
    );
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"],
        json!({"app": "shop", "berth/container": "web"})
    );
    assert!(deployment["spec"]["strategy"].is_null());
    let container = container_of(&deployment);
    assert_eq!(container["image"], "registry.example/web:1.2");
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(container["command"], json!(["httpd", "-f"]));
    assert_eq!(container["args"], json!(["-p", "8080"]));
    assert_eq!(container["workingDir"], "/srv");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["restartPolicy"],
        "Always"
    );
    assert!(export.warnings.is_empty(), "{:?}", export.warnings);
}

#[test]
fn pods_keep_never_and_on_failure_where_a_deployment_must_restart_always() {
    let yaml = format!("{WEB}  restart: {{policy: on-failure, maxRetries: 3}}\n");
    let as_deployment = export_of(&yaml);
    let deployment = object(&as_deployment, "Deployment", "web");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["restartPolicy"],
        "Always"
    );
    let forced = warning(&as_deployment, "always restart");
    assert!(
        forced.starts_with("app.yaml:11:") && forced.contains("spec.restart.policy"),
        "{forced}"
    );
    warning(&as_deployment, "maxRetries");

    let options = ExportOptions {
        pods: true,
        ..ExportOptions::default()
    };
    let as_pod = export_with(&yaml, &options, &MapFiles::default());
    assert_eq!(kinds(&as_pod), ["Pod web"]);
    let pod = object(&as_pod, "Pod", "web");
    assert_eq!(pod["spec"]["restartPolicy"], "OnFailure");
    assert_eq!(
        pod["metadata"]["labels"],
        json!({"app": "shop", "berth/container": "web"})
    );
    assert!(!as_pod
        .warnings
        .iter()
        .any(|w| w.message.contains("always restart")));
}

#[test]
fn a_volume_becomes_a_claim_and_its_users_deploy_with_recreate() {
    let yaml = "\
apiVersion: berth/v1
kind: Volume
metadata: {name: data, labels: {tier: db}}
---
apiVersion: berth/v1
kind: Container
metadata: {name: db}
spec:
  image: postgres:16
  mounts:
    - {type: volume, source: data, target: /var/lib/postgresql/data}
    - {type: volume, source: data, target: /backup, readOnly: true}
";
    let export = export_of(yaml);
    assert_eq!(
        kinds(&export),
        ["PersistentVolumeClaim data", "Deployment db"],
        "claims come before the workloads that use them"
    );
    let claim = object(&export, "PersistentVolumeClaim", "data");
    assert_eq!(claim["spec"]["accessModes"], json!(["ReadWriteOnce"]));
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "1Gi");
    assert_eq!(claim["metadata"]["labels"], json!({"tier": "db"}));
    assert!(warning(&export, "asking for 1Gi").starts_with("app.yaml:3:"));

    let deployment = object(&export, "Deployment", "db");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"],
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]),
        "one pod volume for two mounts of one claim"
    );
    assert_eq!(
        container_of(&deployment)["volumeMounts"],
        json!([
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "data", "mountPath": "/backup", "readOnly": true}
        ])
    );
}

#[test]
fn the_volume_size_is_an_option_and_must_be_a_quantity() {
    let yaml = "apiVersion: berth/v1\nkind: Volume\nmetadata: {name: data}\n";
    let options = ExportOptions {
        volume_size: "20Gi".to_string(),
        ..ExportOptions::default()
    };
    let export = export_with(yaml, &options, &MapFiles::default());
    let claim = object(&export, "PersistentVolumeClaim", "data");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "20Gi");
    let bad = ExportOptions {
        volume_size: "lots".to_string(),
        ..ExportOptions::default()
    };
    let error = super::export(&set(yaml), &bad, &MapFiles::default()).unwrap_err();
    assert!(error.to_string().contains("\"lots\""), "{error}");
}

#[test]
fn tmpfs_becomes_an_emptydir_in_memory_and_bind_a_hostpath_with_a_warning() {
    let yaml = format!(
        "{WEB}  mounts:\n    - {{type: tmpfs, target: /tmp, options: [size=64m, noexec]}}\n    - {{type: bind, source: ./conf, target: /etc/app, readOnly: true}}\n"
    );
    let export = export_of(&yaml);
    let deployment = object(&export, "Deployment", "web");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"],
        json!([
            {"name": "tmpfs-0", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "bind-1", "hostPath": {"path": "/srv/app/conf"}}
        ])
    );
    let hostpath = warning(&export, "hostPath volume");
    assert!(
        hostpath.starts_with("app.yaml:13:7: spec.mounts[1]:"),
        "{hostpath}"
    );
    let options = warning(&export, "noexec");
    assert!(options.contains("spec.mounts[0].options"), "{options}");
    assert_eq!(deployment["spec"]["strategy"], Value::Null, "no claim");
}

#[test]
fn published_ports_make_a_clusterip_service_named_as_the_container() {
    let yaml = format!(
        "{WEB}  ports:\n    - {{containerPort: 8080, hostPort: 80, hostIP: 127.0.0.1}}\n    - {{containerPort: 53, protocol: udp}}\n"
    );
    let export = export_of(&yaml);
    assert_eq!(kinds(&export), ["Service web", "Deployment web"]);
    let service = object(&export, "Service", "web");
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(
        service["spec"]["selector"],
        json!({"berth/container": "web"})
    );
    assert_eq!(
        service["spec"]["ports"],
        json!([
            {"name": "tcp-8080", "port": 8080, "targetPort": 8080, "protocol": "TCP"},
            {"name": "udp-53", "port": 53, "targetPort": 53, "protocol": "UDP"}
        ])
    );
    let ports = container_of(&object(&export, "Deployment", "web"))["ports"].clone();
    assert_eq!(ports.as_array().map(Vec::len), Some(2));
    let published = warning(&export, "ClusterIP Service web");
    assert!(
        published.contains("127.0.0.1:80->8080") && published.contains("NodePort"),
        "{published}"
    );
}

#[test]
fn a_service_name_starts_with_a_letter() {
    let yaml = "apiVersion: berth/v1\nkind: Container\nmetadata: {name: 3d}\nspec:\n  image: x\n  ports: [{containerPort: 80}]\n";
    let export = export_of(yaml);
    let service = object(&export, "Service", "s-3d");
    assert_eq!(
        service["spec"]["selector"],
        json!({"berth/container": "3d"})
    );
}

#[test]
fn a_job_keeps_its_counts_deadlines_and_indexed_mode() {
    let yaml = "\
apiVersion: berth/v1
kind: Job
metadata: {name: batch}
spec:
  completions: 3
  parallelism: 2
  completionMode: Indexed
  restartPolicy: OnFailure
  backoffLimit: 2
  activeDeadline: 5m
  ttlAfterFinished: 1h
  backoff: {initial: 1s}
  template:
    image: busybox:1.36
    command: [sh, -c, 'echo $BERTH_JOB_INDEX']
";
    let export = export_of(yaml);
    let job = object(&export, "Job", "batch");
    assert_eq!(job["apiVersion"], "batch/v1");
    let spec = &job["spec"];
    assert_eq!(spec["completions"], 3);
    assert_eq!(spec["parallelism"], 2);
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["backoffLimit"], 2);
    assert_eq!(spec["activeDeadlineSeconds"], 300);
    assert_eq!(spec["ttlSecondsAfterFinished"], 3600);
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "OnFailure");
    assert_eq!(
        spec["template"]["metadata"]["labels"],
        json!({"berth/job": "batch"})
    );
    assert_eq!(
        container_of(&job)["env"],
        json!([{"name": "BERTH_JOB_INDEX", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}])
    );
    assert!(warning(&export, "retry backoff").contains("spec.backoff"));
}

#[test]
fn a_scheduled_job_becomes_a_cronjob_in_utc() {
    let yaml = "\
apiVersion: berth/v1
kind: Job
metadata: {name: tick, labels: {app: x}}
spec:
  schedule: '*/15 * * * *'
  concurrencyPolicy: Replace
  historyLimit: 5
  template: {image: busybox:1.36, command: [date]}
";
    let export = export_of(yaml);
    assert_eq!(kinds(&export), ["CronJob tick"]);
    let cron = object(&export, "CronJob", "tick");
    let spec = &cron["spec"];
    assert_eq!(spec["schedule"], "*/15 * * * *");
    assert_eq!(spec["timeZone"], "Etc/UTC");
    assert_eq!(spec["concurrencyPolicy"], "Replace");
    assert_eq!(spec["successfulJobsHistoryLimit"], 5);
    let job = &spec["jobTemplate"]["spec"];
    assert_eq!(job["backoffLimit"], 6);
    assert_eq!(job["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(
        job["template"]["metadata"]["labels"],
        json!({"app": "x", "berth/job": "tick"})
    );
}

#[test]
fn an_exec_check_becomes_readiness_startup_and_liveness_probes() {
    let yaml = format!(
        "{WEB}  healthcheck:\n    exec: [wget, -q, http://127.0.0.1:8080/]\n    interval: 5s\n    timeout: 1500ms\n    retries: 2\n    startPeriod: 12s\n    onUnhealthy: restart\n"
    );
    let export = export_of(&yaml);
    let container = container_of(&object(&export, "Deployment", "web")).clone();
    let readiness = json!({
        "exec": {"command": ["wget", "-q", "http://127.0.0.1:8080/"]},
        "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 2
    });
    assert_eq!(container["readinessProbe"], readiness);
    assert_eq!(container["livenessProbe"], readiness);
    assert_eq!(
        container["startupProbe"]["failureThreshold"], 5,
        "12s of grace at 5s a check, then 2 failures"
    );
    assert!(warning(&export, "1500ms becomes 2s").contains("spec.healthcheck.timeout"));
}

#[test]
fn a_check_without_restart_is_readiness_only_with_berths_defaults() {
    let yaml = format!("{WEB}  healthcheck: {{exec: [\"true\"]}}\n");
    let export = export_of(&yaml);
    let container = container_of(&object(&export, "Deployment", "web")).clone();
    assert_eq!(container["readinessProbe"]["periodSeconds"], 30);
    assert_eq!(container["readinessProbe"]["timeoutSeconds"], 30);
    assert_eq!(container["readinessProbe"]["failureThreshold"], 3);
    assert!(container["livenessProbe"].is_null());
    assert!(container["startupProbe"].is_null());
}

#[test]
fn http_and_tcp_checks_become_httpget_and_tcpsocket() {
    let http = format!(
        "{WEB}  healthcheck:\n    http: {{path: /healthz, port: 8080, headers: {{X-Probe: berth}}, host: shop.example}}\n"
    );
    let export = export_of(&http);
    let probe = container_of(&object(&export, "Deployment", "web"))["readinessProbe"].clone();
    assert_eq!(
        probe["httpGet"],
        json!({"path": "/healthz", "port": 8080, "scheme": "HTTP", "httpHeaders": [
            {"name": "X-Probe", "value": "berth"}, {"name": "Host", "value": "shop.example"}]})
    );
    let tcp = format!("{WEB}  healthcheck: {{tcp: {{port: 5432}}}}\n");
    let export = export_of(&tcp);
    let probe = container_of(&object(&export, "Deployment", "web"))["readinessProbe"].clone();
    assert_eq!(probe["tcpSocket"], json!({"port": 5432}));
}

const DB: &str = "\
apiVersion: berth/v1
kind: Container
metadata: {name: db}
spec:
  image: postgres:16
  ports: [{containerPort: 5432}]
  healthcheck: {tcp: {port: 5432}}
---
apiVersion: berth/v1
kind: Job
metadata: {name: migrate}
spec:
  template: {image: migrate:1}
---
apiVersion: berth/v1
kind: Container
metadata: {name: cache}
spec: {image: redis:7}
---
";

#[test]
fn a_dependency_with_a_port_is_waited_for_by_an_init_container() {
    let yaml = format!(
        "{DB}apiVersion: berth/v1\nkind: Container\nmetadata: {{name: app}}\nspec:\n  image: app:1\n  dependsOn:\n    - {{name: db, condition: healthy}}\n    - {{name: migrate, condition: completed}}\n    - cache\n"
    );
    let options = ExportOptions {
        wait_image: "registry.example/busybox:1.36".to_string(),
        ..ExportOptions::default()
    };
    let export = export_with(&yaml, &options, &MapFiles::default());
    let deployment = object(&export, "Deployment", "app");
    let init = &deployment["spec"]["template"]["spec"]["initContainers"];
    assert_eq!(init.as_array().map(Vec::len), Some(1), "{init}");
    assert_eq!(init[0]["name"], "wait-for-db");
    assert_eq!(init[0]["image"], "registry.example/busybox:1.36");
    let script = init[0]["command"][2].as_str().unwrap_or_default();
    assert!(script.contains("nc -w 2 db 5432"), "{script}");
    assert!(warning(&export, "waiting for Job migrate").contains("spec.dependsOn[1]"));
    assert!(warning(&export, "cache publishes no TCP port").contains("spec.dependsOn[2]"));
}

#[test]
fn env_stays_env_and_env_files_become_a_config_map_and_a_secret() {
    let yaml = format!("{WEB}  env: {{MODE: prod, PORT: 8080}}\n  envFiles: [app.env, more.env]\n");
    let files = MapFiles(BTreeMap::from([
        (
            PathBuf::from("/srv/app/app.env"),
            "# settings\nLOG_LEVEL=info\nDB_PASSWORD=hunter2\nexport REGION=\"eu\"\n".to_string(),
        ),
        (
            PathBuf::from("/srv/app/more.env"),
            "LOG_LEVEL=debug\n".to_string(),
        ),
    ]));
    let export = export_with(&yaml, &ExportOptions::default(), &files);
    let container = container_of(&object(&export, "Deployment", "web")).clone();
    assert_eq!(
        container["env"],
        json!([{"name": "MODE", "value": "prod"}, {"name": "PORT", "value": "8080"}])
    );
    assert_eq!(
        container["envFrom"],
        json!([{"configMapRef": {"name": "web-env"}}, {"secretRef": {"name": "web-env"}}])
    );
    let config = object(&export, "ConfigMap", "web-env");
    assert_eq!(
        config["data"],
        json!({"LOG_LEVEL": "debug", "REGION": "eu"}),
        "a later file wins"
    );
    let secret = object(&export, "Secret", "web-env");
    assert_eq!(secret["stringData"], json!({"DB_PASSWORD": "hunter2"}));
    let said = warning(&export, "DB_PASSWORD");
    assert!(
        said.contains("spec.envFiles[0]") && said.contains("clear text"),
        "{said}"
    );
}

#[test]
fn a_missing_env_file_is_an_error_naming_it() {
    let yaml = format!("{WEB}  envFiles: [gone.env]\n");
    let error =
        super::export(&set(&yaml), &ExportOptions::default(), &MapFiles::default()).unwrap_err();
    assert!(error.to_string().contains("/srv/app/gone.env"), "{error}");
}

#[test]
fn resources_and_security_map_to_limits_and_a_security_context() {
    let yaml = format!(
        "{WEB}  user: '1000:2000'\n  readOnlyRootfs: true\n  capabilities: {{add: [CAP_NET_ADMIN], drop: [all]}}\n  resources: {{memory: 256Mi, cpus: 0.5, pids: 100}}\n  seccomp: unconfined\n"
    );
    let export = export_of(&yaml);
    let container = container_of(&object(&export, "Deployment", "web")).clone();
    assert_eq!(
        container["resources"],
        json!({"limits": {"memory": "256Mi", "cpu": "500m"}})
    );
    assert_eq!(
        container["securityContext"],
        json!({
            "runAsUser": 1000, "runAsGroup": 2000,
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
            "seccompProfile": {"type": "Unconfined"}
        })
    );
    assert!(warning(&export, "podPidsLimit").contains("spec.resources.pids"));
}

#[test]
fn privileged_drops_what_the_api_refuses_beside_it() {
    let yaml = format!("{WEB}  privileged: true\n  networkMode: host\n");
    let export = export_of(&yaml);
    let deployment = object(&export, "Deployment", "web");
    assert_eq!(
        container_of(&deployment)["securityContext"],
        json!({"privileged": true}),
        "no allowPrivilegeEscalation: false or seccomp beside privileged"
    );
    assert_eq!(deployment["spec"]["template"]["spec"]["hostNetwork"], true);
}

#[test]
fn a_user_name_cannot_be_mapped_and_says_so() {
    let yaml = format!("{WEB}  user: www-data\n");
    let export = export_of(&yaml);
    let context = container_of(&object(&export, "Deployment", "web"))["securityContext"].clone();
    assert!(context["runAsUser"].is_null());
    assert!(warning(&export, "is a name").starts_with("app.yaml:11:9: spec.user:"));
}

#[test]
fn an_internal_network_becomes_a_network_policy_over_its_members() {
    let yaml = "\
apiVersion: berth/v1
kind: Network
metadata: {name: backend}
spec: {internal: true}
---
apiVersion: berth/v1
kind: Network
metadata: {name: front}
spec: {subnet: 10.0.0.0/24}
---
apiVersion: berth/v1
kind: Container
metadata: {name: api}
spec:
  image: api:1
  networks: [backend, {name: front, ip: 10.0.0.5, aliases: [www]}]
";
    let export = export_of(yaml);
    let policy = object(&export, "NetworkPolicy", "backend");
    let members = json!({"matchLabels": {"network.berth/backend": "true"}});
    assert_eq!(policy["spec"]["podSelector"], members);
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        policy["spec"]["ingress"],
        json!([{"from": [{"podSelector": members}]}])
    );
    assert_eq!(
        policy["spec"]["egress"][0],
        json!({"to": [{"podSelector": members}]})
    );
    assert_eq!(policy["spec"]["egress"][1]["ports"][0]["port"], 53);
    let deployment = object(&export, "Deployment", "api");
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["network.berth/backend"],
        "true"
    );
    assert!(warning(&export, "network front has no counterpart").starts_with("app.yaml:8:"));
    warning(&export, "static ip");
    warning(&export, "aliases (www)");
    warning(&export, "add up rather than subtract");
}

#[test]
fn a_local_image_gets_a_localhost_name_and_a_warning_at_its_line() {
    let yaml = "apiVersion: berth/v1\nkind: Container\nmetadata: {name: web}\nspec:\n  image: oci-layout:../images/busybox\n";
    let export = export_of(yaml);
    let container = container_of(&object(&export, "Deployment", "web")).clone();
    assert_eq!(container["image"], "localhost/busybox:latest");
    assert!(warning(&export, "push the image").starts_with("app.yaml:5:10: spec.image:"));
}

#[test]
fn labels_kubernetes_refuses_become_annotations() {
    let yaml = "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: web\n  labels: {app: shop, note: 'two words'}\nspec: {image: x}\n";
    let export = export_of(yaml);
    let deployment = object(&export, "Deployment", "web");
    assert_eq!(deployment["metadata"]["labels"], json!({"app": "shop"}));
    assert_eq!(
        deployment["metadata"]["annotations"],
        json!({"note": "two words"})
    );
    warning(&export, "labels note are not valid");
}

#[test]
fn host_label_selectors_become_node_selectors_and_globs_warn() {
    let yaml = "\
apiVersion: berth/v1
kind: Container
metadata: {name: edge, hosts: {matchLabels: {role: edge, hostname: web1}}}
spec: {image: x}
---
apiVersion: berth/v1
kind: Container
metadata: {name: any, hosts: ['web-*']}
spec: {image: x}
";
    let export = export_of(yaml);
    let edge = object(&export, "Deployment", "edge");
    assert_eq!(
        edge["spec"]["template"]["spec"]["nodeSelector"],
        json!({"role": "edge", "kubernetes.io/hostname": "web1"})
    );
    assert!(warning(&export, "hostname globs").contains("metadata.hosts"));
}

#[test]
fn what_has_no_counterpart_warns_field_by_field() {
    let yaml = format!(
        "{WEB}  devices: [/dev/fuse]\n  stopSignal: SIGQUIT\n  stopGracePeriod: 20s\n  logging: {{maxSize: 1Mi}}\n"
    );
    let export = export_of(&yaml);
    let deployment = object(&export, "Deployment", "web");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        20
    );
    assert!(warning(&export, "device plugin").contains("spec.devices[0]"));
    assert!(warning(&export, "SIGQUIT").contains("spec.stopSignal"));
    assert!(warning(&export, "containerLogMaxSize").contains("spec.logging"));
}
