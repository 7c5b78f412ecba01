//! The registry of the 14 kinds: kind, API group, version, plural and short names, read from the types
//! themselves (so it cannot drift from the CRDs), and the lookups the controllers, the receiver and the
//! CLI share: by kind, plural, singular or short name, and a kind's served `apiVersion`.

use std::sync::LazyLock;

use kube::{CustomResourceExt, Resource, core::ApiResource};

use crate::{helm, image, kustomize, notification, source};

/// One kind of the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kind {
    /// `GitRepository`.
    pub kind: String,
    /// `source.toolkit.fluxcd.io`.
    pub group: String,
    /// `v1`.
    pub version: String,
    /// `gitrepositories`.
    pub plural: String,
    /// `gitrepo`.
    pub short_names: Vec<String>,
}

impl Kind {
    fn of<K>() -> Self
    where
        K: Resource<DynamicType = ()> + CustomResourceExt,
    {
        Self {
            kind: K::kind(&()).into_owned(),
            group: K::group(&()).into_owned(),
            version: K::version(&()).into_owned(),
            plural: K::plural(&()).into_owned(),
            short_names: K::shortnames().iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `group/version`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// The dynamic API resource of this kind.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }

    /// Whether `name` names this kind: its kind, plural, singular or a short name, in any case.
    pub fn named(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.kind.to_lowercase() == name || self.plural == name || self.short_names.contains(&name)
    }
}

/// Every kind, sources first.
pub static KINDS: LazyLock<Vec<Kind>> = LazyLock::new(|| {
    vec![
        Kind::of::<source::GitRepository>(),
        Kind::of::<source::OCIRepository>(),
        Kind::of::<source::Bucket>(),
        Kind::of::<source::HelmRepository>(),
        Kind::of::<source::HelmChart>(),
        Kind::of::<source::ExternalArtifact>(),
        Kind::of::<crate::extensions::ArtifactGenerator>(),
        Kind::of::<kustomize::Kustomization>(),
        Kind::of::<helm::HelmRelease>(),
        Kind::of::<notification::Alert>(),
        Kind::of::<notification::Provider>(),
        Kind::of::<notification::Receiver>(),
        Kind::of::<image::ImageRepository>(),
        Kind::of::<image::ImagePolicy>(),
        Kind::of::<image::ImageUpdateAutomation>(),
    ]
});

/// The kind `name` names (kind, plural, singular or short name, any case).
pub fn find(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.named(name))
}

/// The kind called exactly `kind` (`GitRepository`).
pub fn get(kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// The source kinds whose artifacts a Kustomization may apply.
pub const KUSTOMIZATION_SOURCES: [&str; 4] = ["GitRepository", "OCIRepository", "Bucket", "ExternalArtifact"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_registered_once_with_its_crd_names() {
        assert_eq!(KINDS.len(), 15);
        for crate::crds::Crd { crd, .. } in crate::crds::crds() {
            let names = &crd.spec.names;
            let k = get(&names.kind).unwrap_or_else(|| panic!("{} is registered", names.kind));
            assert_eq!(k.plural, names.plural);
            assert_eq!(k.group, crd.spec.group);
            assert!(crd.spec.versions.iter().any(|v| v.name == k.version && v.storage));
            assert_eq!(&k.short_names, names.short_names.as_ref().unwrap_or(&Vec::new()));
        }
        for source in KUSTOMIZATION_SOURCES {
            assert_eq!(get(source).unwrap().group, "source.toolkit.fluxcd.io");
        }
    }

    #[test]
    fn kinds_are_found_by_any_of_their_names() {
        assert_eq!(find("ks").unwrap().kind, "Kustomization");
        assert_eq!(find("Kustomizations").unwrap().kind, "Kustomization");
        assert_eq!(find("gitrepository").unwrap().kind, "GitRepository");
        assert_eq!(find("hr").unwrap().api_version(), "helm.toolkit.fluxcd.io/v2");
        assert_eq!(
            find("alerts").unwrap().api_version(),
            "notification.toolkit.fluxcd.io/v1beta3"
        );
        assert_eq!(find("imgpol").unwrap().kind, "ImagePolicy");
        assert!(find("deployment").is_none());
        let ar = get("HelmChart").unwrap().api_resource();
        assert_eq!(
            (ar.api_version.as_str(), ar.plural.as_str()),
            ("source.toolkit.fluxcd.io/v1", "helmcharts")
        );
    }
}
