//! Writing Flux artifacts (`driftless push artifact`, `tag artifact`): Flux's layout — one
//! `application/vnd.cncf.flux.content.v1.tar+gzip` layer, an empty `application/vnd.cncf.flux.config.v1+json`
//! config, the origin in the manifest's annotations — so an OCIRepository consumes what is pushed.

use std::collections::BTreeMap;

use oci_client::{
    client::{Config, ImageLayer},
    manifest::{OciImageManifest, OciManifest},
};

use crate::{Client, Error, FLUX_CONFIG_MEDIA_TYPE, FLUX_CONTENT_MEDIA_TYPE, Wanted};

/// The annotation with the artifact's creation time.
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

impl Client {
    /// Pushes `layer` (a gzipped tarball) as a Flux artifact tagged `tag`, with `annotations` on its
    /// manifest; returns the manifest's digest.
    pub async fn push_artifact(
        &self,
        tag: &str,
        layer: Vec<u8>,
        annotations: BTreeMap<String, String>,
    ) -> Result<String, Error> {
        let layers = [ImageLayer::new(layer, FLUX_CONTENT_MEDIA_TYPE.to_string(), None)];
        let config = Config::new(b"{}".to_vec(), FLUX_CONFIG_MEDIA_TYPE.to_string(), None);
        let manifest = OciImageManifest::build(&layers, &config, Some(annotations));
        let image = self.repo.tag(tag);
        self.bounded(
            &format!("pushing {}", image),
            self.inner
                .push(&image, &layers, config, &self.auth, Some(manifest)),
        )
        .await?;
        self.resolve(&Wanted::Tag(tag.to_string()))
            .await
            .map(|r| r.digest)
    }

    /// Tags the manifest `from` (a tag) also as `to`; returns its digest.
    pub async fn retag(&self, from: &str, to: &str) -> Result<String, Error> {
        let digest = self.resolve(&Wanted::Tag(from.to_string())).await?.digest;
        let (manifest, _) = self.manifest(&digest).await?;
        self.bounded(
            &format!("tagging {digest} as {to}"),
            self.inner
                .push_manifest(&self.repo.tag(to), &OciManifest::Image(manifest)),
        )
        .await?;
        Ok(digest)
    }

    /// The manifest `tag` names and its digest.
    pub async fn manifest_of(&self, tag: &str) -> Result<(OciImageManifest, String), Error> {
        let digest = self.resolve(&Wanted::Tag(tag.to_string())).await?.digest;
        self.manifest(&digest).await
    }
}
