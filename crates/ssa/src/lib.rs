//! The apply engine of kustomize-controller (and, later, helm-controller), after fluxcd/pkg `ssa`:
//! every object is server-side applied with the controller's field manager after a server dry-run, so
//! unchanged objects are reported and not written; CRDs, Namespaces and ClusterRoles go first (CRDs must be
//! established before their custom resources), then `*Class` kinds, then the rest; what left the set is
//! pruned from the previous inventory. Fields set with `kubectl` are taken over and so removed when Git does
//! not have them. Per-object annotations, named after the owner's API group ([`Annotations`]; for
//! kustomize-controller `kustomize.toolkit.fluxcd.io`, for helm-controller `helm.toolkit.fluxcd.io`):
//! `<group>/ssa` (`Ignore`, `IfNotPresent`, `Merge`: keep kubectl's fields), `<group>/prune: disabled`,
//! `<group>/reconcile: disabled`, `<group>/force: enabled` (also as a label: recreate when an immutable
//! field changed; values compared case-insensitively). By step: what is read off an object (`object.rs`),
//! which kinds the server serves (`kinds.rs`), the apply (`apply.rs`), prune (`prune.rs`), health
//! ([`health`]).
#![warn(missing_docs)]

mod apply;
mod drift;
pub mod health;
mod kinds;
mod object;
mod prune;

pub use self::{
    apply::Verified,
    drift::{Drift, DriftKind, remove_paths},
    kinds::KindCache,
    object::{inventory_ref, parse_ref, subject},
};
use self::{kinds::*, object::*};

use std::fmt;

use kube::Client;
use tracing::warn;

/// The API group of Kustomizations: its annotations steer what kustomize-controller applies.
pub const KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io";

/// The API group of HelmReleases: its annotations steer what helm-controller applies.
pub const HELM_GROUP: &str = "helm.toolkit.fluxcd.io";

/// The per-object annotations a manager honours, named after its owner's API group as Flux's `ssa`
/// package names them (`<group>/ssa`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotations {
    /// The SSA policy: `Ignore`, `IfNotPresent`, `Merge` (keep kubectl's fields).
    pub ssa: String,
    /// The prune policy: `disabled` keeps the object when it leaves the set.
    pub prune: String,
    /// The reconcile policy: `disabled` leaves a live object alone.
    pub reconcile: String,
    /// The force annotation or label: `enabled` recreates the object when an immutable field changed.
    pub force: String,
}

impl Annotations {
    /// The annotations of the owner group `group`.
    pub fn of(group: &str) -> Self {
        let key = |name: &str| format!("{group}/{name}");
        Self {
            ssa: key("ssa"),
            prune: key("prune"),
            reconcile: key("reconcile"),
            force: key("force"),
        }
    }
}

/// An apply or prune failure, naming the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object's kind is not served by the cluster.
    #[error("{id}: no matches for kind \"{kind}\" in version \"{api_version}\"")]
    UnknownKind {
        /// The object.
        id: String,
        /// Its kind.
        kind: String,
        /// Its apiVersion.
        api_version: String,
    },
    /// The object lacks apiVersion, kind or name.
    #[error("invalid object: {0}")]
    Invalid(String),
    /// The API server refused the object (dry-run or apply).
    #[error("{id} {action} failed: {message}")]
    Api {
        /// The object.
        id: String,
        /// dry-run, apply, delete.
        action: &'static str,
        /// The server's message.
        message: String,
        /// The server did not answer or was overloaded (see [`driftless_runtime::error::is_unavailable`]).
        unavailable: bool,
    },
    /// Discovery failed.
    #[error("discovery failed: {message}")]
    Discovery {
        /// Why.
        message: String,
        /// The server did not answer or was overloaded.
        unavailable: bool,
    },
}

impl Error {
    /// Whether the API server did not answer or was overloaded: worth retrying soon, unlike a refusal.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Api {
                unavailable: true,
                ..
            } | Error::Discovery {
                unavailable: true,
                ..
            }
        )
    }
}

/// What happened to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// It did not exist and was created.
    Created,
    /// It existed and was changed.
    Configured,
    /// It was already as desired: nothing was written.
    Unchanged,
    /// It was deleted (pruned).
    Deleted,
    /// An annotation told us to leave it alone.
    Skipped,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
            Action::Deleted => "deleted",
            Action::Skipped => "skipped",
        })
    }
}

/// One entry of a change set: `Deployment/default/web configured`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// `Kind/namespace/name` (or `Kind/name` when cluster-scoped).
    pub subject: String,
    /// What happened.
    pub action: Action,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject, self.action)
    }
}

/// The changes of one apply or prune.
#[derive(Clone, Debug, Default)]
pub struct ChangeSet {
    /// The entries, in apply order.
    pub entries: Vec<Change>,
}

impl ChangeSet {
    /// Whether anything was written or deleted.
    pub fn has_changes(&self) -> bool {
        self.entries
            .iter()
            .any(|c| matches!(c.action, Action::Created | Action::Configured | Action::Deleted))
    }

    /// Flux's event message: one changed object per line.
    pub fn summary(&self) -> String {
        self.entries
            .iter()
            .filter(|c| matches!(c.action, Action::Created | Action::Configured | Action::Deleted))
            .map(Change::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Applies and prunes with one field manager.
pub struct ResourceManager {
    client: Client,
    field_manager: String,
    annotations: Annotations,
    force: bool,
    overridden: Vec<String>,
    concurrency: usize,
    verified: Option<std::sync::Arc<Verified>>,
    kinds: Option<std::sync::Arc<KindCache>>,
}

/// How many requests a manager has in flight at once by default.
pub const DEFAULT_CONCURRENCY: usize = 8;

impl ResourceManager {
    /// A manager writing as `field_manager` through `client` for an owner of the API group
    /// `owner_group` ([`KUSTOMIZE_GROUP`], [`HELM_GROUP`]), whose [`Annotations`] it honours.
    pub fn new(client: Client, field_manager: &str, owner_group: &str) -> Self {
        Self {
            client,
            field_manager: field_manager.to_string(),
            annotations: Annotations::of(owner_group),
            force: false,
            overridden: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
            verified: None,
            kinds: None,
        }
    }

    /// Resolves kinds through `cache` (shared across reconciles against the same cluster).
    pub fn with_kind_cache(mut self, cache: std::sync::Arc<KindCache>) -> Self {
        self.kinds = Some(cache);
        self
    }

    /// Remembers verified objects in `verified` (shared across reconciles), so an object nobody changed
    /// since is not even dry-run again.
    pub fn with_verified(mut self, verified: std::sync::Arc<Verified>) -> Self {
        self.verified = Some(verified);
        self
    }

    /// At most `n` (at least 1) requests in flight at once: objects of a stage are looked up, dry-run
    /// and applied in parallel.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Field managers whose fields are taken over too, whatever their operation (`--override-manager`).
    pub fn with_overridden_managers(mut self, managers: &[String]) -> Self {
        self.overridden = managers.to_vec();
        self
    }

    /// With `force`, an object the API server refuses because an immutable field changed is deleted and
    /// created again (Kustomization `spec.force`); without it, only objects annotated or labelled
    /// `kustomize.toolkit.fluxcd.io/force: enabled` are.
    pub fn with_force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::apply::{Step, Writes};

    use super::*;

    #[test]
    fn later_objects_wait_for_the_crds_namespaces_and_cluster_roles_about_to_be_written() {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget"}}});
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}});
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "reader"}});
        let apply = || Step::Apply {
            takeover: None,
            exists: false,
        };
        let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "other"}});
        let inside =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "apps"}});
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": "other"}, "roleRef": {"kind": "ClusterRole", "name": "reader"}});
        let elsewhere =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "other"}});

        let mut unchanged = Writes::default();
        for o in [&crd, &ns, &role] {
            unchanged.record(o, &Step::Done(Action::Unchanged));
        }
        let mut written = Writes::default();
        for o in [&crd, &ns, &role] {
            written.record(o, &apply());
        }
        for o in [&widget, &inside, &binding] {
            assert!(!unchanged.needed_by(o), "{o}");
            assert!(written.needed_by(o), "{o}");
        }
        assert!(!written.needed_by(&elsewhere));
    }

    #[test]
    fn inventory_ids_follow_flux() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}});
        let r = inventory_ref(&d);
        assert_eq!(
            (r.id.as_str(), r.v.as_str()),
            ("default_web_apps_Deployment", "v1")
        );
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}});
        assert_eq!(inventory_ref(&ns).id, "_apps__Namespace");
        let (n, name, gvk) = parse_ref(&r).unwrap();
        assert_eq!(
            (n.as_str(), name.as_str(), gvk.group.as_str(), gvk.kind.as_str()),
            ("default", "web", "apps", "Deployment")
        );
    }

    #[test]
    fn stages_put_crds_namespaces_and_classes_first() {
        let kinds = [
            "Deployment",
            "IngressClass",
            "Namespace",
            "CustomResourceDefinition",
        ];
        let mut objs: Vec<Value> = kinds.iter().map(|k| json!({"kind": k})).collect();
        objs.sort_by_key(stage);
        let sorted: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(
            sorted,
            [
                "Namespace",
                "CustomResourceDefinition",
                "IngressClass",
                "Deployment"
            ]
        );
    }

    #[test]
    fn summaries_list_only_changes() {
        let cs = ChangeSet {
            entries: vec![
                Change {
                    subject: "Deployment/default/web".into(),
                    action: Action::Configured,
                },
                Change {
                    subject: "ConfigMap/default/c".into(),
                    action: Action::Unchanged,
                },
                Change {
                    subject: "Namespace/apps".into(),
                    action: Action::Created,
                },
            ],
        };
        assert_eq!(
            cs.summary(),
            "Deployment/default/web configured\nNamespace/apps created"
        );
    }
}
