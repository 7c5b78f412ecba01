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
    // NB: one blocking call opens the file and, when it is small, reads it whole; a larger one is
    // streamed in large chunks — tokio's files go to the blocking pool once per read
    let opened = tokio::task::spawn_blocking(move || -> std::io::Result<Opened> {
        let mut f = std::fs::File::open(&file)?;
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Err(std::io::ErrorKind::NotFound.into());
        }
        if meta.len() <= CHUNK as u64 {
            let mut bytes = Vec::with_capacity(meta.len() as usize);
            std::io::Read::read_to_end(&mut f, &mut bytes)?;
            return Ok(Opened::Whole(bytes));
        }
        Ok(Opened::Stream(f, meta.len()))
    })
    .await;
    let (len, body) = match opened {
        Ok(Ok(Opened::Whole(bytes))) => (bytes.len() as u64, Body::from(bytes)),
        Ok(Ok(Opened::Stream(f, len))) => (
            len,
            Body::from_stream(ReaderStream::with_capacity(tokio::fs::File::from_std(f), CHUNK)),
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, "application/x-gzip".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response()
}

/// Files up to this size are read in one go; larger ones are streamed in chunks of it, so a request
/// holds at most this much in memory.
const CHUNK: usize = 256 << 10;

enum Opened {
    Whole(Vec<u8>),
    Stream(std::fs::File, u64),
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

    #[tokio::test]
    async fn files_larger_than_a_chunk_stream_whole_and_directories_are_not_served() {
        let base = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::new(base.path(), "h", Duration::from_secs(60), 2).unwrap());
        let dir = base.path().join("gitrepository/ns/repo");
        std::fs::create_dir_all(dir.join("sub.tar.gz")).unwrap();
        let large: Vec<u8> = (0..CHUNK * 3 + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.join("large.tar.gz"), &large).unwrap();
        let router = router(storage);
        let (status, body) = get_path(router.clone(), "/gitrepository/ns/repo/large.tar.gz").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body == large, "the streamed body differs");
        let (status, _) = get_path(router, "/gitrepository/ns/repo/sub.tar.gz").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
