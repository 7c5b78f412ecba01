//! The artifact server on `--storage-addr`: `GET /<kind>/<namespace>/<name>/<file>` from the storage
//! directory, streamed, and nothing else (no listing, no dot-files, no path leaving the storage).

use std::{path::PathBuf, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::{Path as UrlPath, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio_util::io::ReaderStream;

use crate::Storage;

/// The router serving `storage`.
pub fn router(storage: Arc<Storage>) -> Router {
    Router::new().route("/{*path}", get(serve)).with_state(storage)
}

async fn serve(State(storage): State<Arc<Storage>>, UrlPath(path): UrlPath<String>) -> Response {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() != 4 || parts.iter().any(|p| p.is_empty() || p.starts_with('.')) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(file): Result<PathBuf, _> = storage.local_path(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let opened = match tokio::fs::File::open(&file).await {
        Ok(f) => f,
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let len = match opened.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, "application/x-gzip".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(ReaderStream::new(opened)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::ignore::Filter;

    async fn get_path(router: Router, path: &str) -> (StatusCode, Vec<u8>) {
        let resp = router
            .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        (
            status,
            resp.into_body().collect().await.unwrap().to_bytes().to_vec(),
        )
    }

    #[tokio::test]
    async fn serves_artifacts_and_latest_and_nothing_else() {
        let base = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::new(base.path(), "h", Duration::from_secs(60), 2).unwrap());
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("a.yaml"), "a").unwrap();
        let filter = Filter::for_source(src.path(), None).unwrap();
        let artifact = storage
            .archive(
                crate::storage::Owner {
                    kind: "GitRepository",
                    namespace: "ns",
                    name: "repo",
                },
                "abc.tar.gz",
                "main@sha1:abc",
                src.path(),
                &filter,
            )
            .unwrap();
        std::fs::write(base.path().join("secret"), "not served").unwrap();
        let router = router(storage.clone());

        let (status, body) = get_path(router.clone(), &format!("/{}", artifact.path)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, std::fs::read(base.path().join(&artifact.path)).unwrap());
        let (status, latest) = get_path(router.clone(), "/gitrepository/ns/repo/latest.tar.gz").await;
        assert_eq!((status, latest), (StatusCode::OK, body));
        for bad in [
            "/secret",
            "/gitrepository/ns/repo",
            "/gitrepository/ns/repo/../../../secret",
            "/gitrepository/ns/repo/.tmp-x",
            "/gitrepository/ns/repo/missing.tar.gz",
            "/gitrepository/ns/../ns/repo/abc.tar.gz",
        ] {
            assert_eq!(
                get_path(router.clone(), bad).await.0,
                StatusCode::NOT_FOUND,
                "{bad}"
            );
        }
    }
}
