//! Networks. Pods share one flat cluster network, so a berth network has
//! no object of its own; an `internal` one (its containers reach only each
//! other) becomes a NetworkPolicy over the pods labelled as its members.
//! A policy selects pods only by labels, so each member pod carries
//! `network.berth/NAME: "true"`.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::object::{labels_and_annotations, meta, KubeObject};
use super::pod::Template;
use super::{at, Output};
use crate::manifest::diagnostic::PathSegment;
use crate::manifest::{Kind, Located, NetworkManifest, Object};

/// The name of berth's built-in network, which every bridge container
/// joins when it names none: the cluster network itself.
const DEFAULT_NETWORK: &str = "default";

/// The label of a pod that is a member of network `name`.
pub fn member_label(name: &str) -> String {
    format!("network.berth/{name}")
}

pub fn network(out: &mut Output, located: &Located, manifest: &NetworkManifest) {
    let name = &manifest.metadata.name;
    if !manifest.spec.internal {
        out.warn(
            located,
            &at(&["metadata", "name"]),
            format!("network {name} has no counterpart: pods share the cluster's network, where every pod reaches every other and the outside unless a NetworkPolicy says otherwise (its driver, subnet and bridge are left out)"),
        );
        return;
    }
    let (labels, annotations) = labels_and_annotations(
        out,
        located,
        &["metadata", "labels"],
        &manifest.metadata.labels,
    );
    let members = LabelSelector {
        match_labels: Some(BTreeMap::from([(member_label(name), "true".to_string())])),
        ..LabelSelector::default()
    };
    let peers = vec![NetworkPolicyPeer {
        pod_selector: Some(members.clone()),
        ..NetworkPolicyPeer::default()
    }];
    out.objects.push(KubeObject::NetworkPolicy(NetworkPolicy {
        metadata: meta(name, labels, annotations),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(members),
            policy_types: Some(vec!["Ingress".to_string(), "Egress".to_string()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(peers.clone()),
                ports: None,
            }]),
            egress: Some(vec![
                NetworkPolicyEgressRule {
                    to: Some(peers),
                    ports: None,
                },
                dns_egress(),
            ]),
        }),
    }));
}

/// Members find each other by Service name, which takes the cluster DNS
/// (berth's containers read /etc/hosts instead).
fn dns_egress() -> NetworkPolicyEgressRule {
    let dns_pods = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector::default()),
        pod_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "k8s-app".to_string(),
                "kube-dns".to_string(),
            )])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    let port = |protocol: &str| NetworkPolicyPort {
        port: Some(IntOrString::Int(53)),
        protocol: Some(protocol.to_string()),
        end_port: None,
    };
    NetworkPolicyEgressRule {
        to: Some(vec![dns_pods]),
        ports: Some(vec![port("UDP"), port("TCP")]),
    }
}

/// The member labels of the pod `template` makes, with warnings for what
/// an attachment says that a pod cannot (a static address, aliases, being
/// on an internal and an open network at once).
pub fn pod_labels(out: &mut Output, template: &Template) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut open = Vec::new();
    for (index, attachment) in template.spec.networks.iter().enumerate() {
        let path = template.path(&[PathSegment::from("networks"), PathSegment::Index(index)]);
        let name = attachment.name();
        if attachment.ip().is_some() {
            out.warn(
                template.located,
                &path,
                "a pod's address is the cluster's to choose: the static ip is left out",
            );
        }
        if let crate::manifest::NetworkAttachment::Detailed(spec) = attachment {
            if !spec.aliases.is_empty() {
                out.warn(
                    template.located,
                    &path,
                    format!("aliases ({}) have no counterpart: other pods reach this one by its Service's name", spec.aliases.join(", ")),
                );
            }
        }
        if is_internal(out, name) {
            labels.insert(member_label(name), "true".to_string());
        } else if name != DEFAULT_NETWORK {
            open.push(name.to_string());
        }
    }
    if !labels.is_empty() && !open.is_empty() {
        out.warn(
            template.located,
            &template.path(&[PathSegment::from("networks")]),
            format!("NetworkPolicies add up rather than subtract: the internal network's policy confines this pod to its members, although it also joins {}", open.join(", ")),
        );
    }
    labels
}

fn is_internal(out: &Output, name: &str) -> bool {
    out.find(name, Kind::Network)
        .is_some_and(|located| matches!(&located.object, Object::Network(n) if n.spec.internal))
}
