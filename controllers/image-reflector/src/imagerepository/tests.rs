use driftless_api::image::ImageRepositorySpec;

use super::*;

fn repo(image: &str) -> ImageRepository {
    let mut obj = ImageRepository::new(
        "web",
        ImageRepositorySpec {
            image: image.into(),
            interval: "5m".into(),
            ..Default::default()
        },
    );
    obj.metadata.namespace = Some("apps".into());
    obj.metadata.generation = Some(1);
    obj
}

#[test]
fn image_names_are_checked_and_made_canonical_as_flux_does() {
    for (image, canonical) in [
        ("alpine", "index.docker.io/library/alpine"),
        ("docker.io/fluxcd/flux", "index.docker.io/fluxcd/flux"),
        ("ghcr.io/org/app", "ghcr.io/org/app"),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app"),
        ("localhost/app", "localhost/app"),
    ] {
        assert_eq!(parse_image(image).unwrap().1, canonical, "{image}");
    }
    for (image, want) in [
        (
            "https://ghcr.io/org/app",
            "should not include URL scheme; remove 'https://'",
        ),
        ("ghcr.io/org/app:1.0", "should not include a tag; remove ':1.0'"),
        (
            "127.0.0.1:5000/app:latest",
            "should not include a tag; remove ':latest'",
        ),
        ("ghcr.io/org/app@sha256:abc", "should not include a digest"),
        ("Not An Image", "invalid repository URL"),
    ] {
        let err = parse_image(image).unwrap_err();
        assert!(matches!(err, Error::ImageUrl(_)), "{image}");
        assert!(err.to_string().contains(want), "{image}: {err}");
        assert_eq!(err.reason(), IMAGE_URL_INVALID);
        assert_eq!(err.class(), ErrorClass::Stalled);
    }
}

#[test]
fn a_scan_is_due_only_when_flux_would_scan() {
    let now: Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
    let interval = Duration::from_secs(300);
    let obj = repo("ghcr.io/org/app");
    let canonical = "ghcr.io/org/app";
    let mut status = ImageRepositoryStatus::default();
    assert_eq!(
        scan_due(&obj, &status, canonical, 0, interval, now),
        Ok("first scan")
    );
    status.last_scan_result = Some(ScanResult {
        revision: Some("1".into()),
        tag_count: 2,
        scan_time: Some(Time(now - jiff_secs(60))),
        latest_tags: None,
    });
    status.canonical_image_name = Some(canonical.into());
    status.observed_exclusion_list = Some(vec![DEFAULT_EXCLUSION.into()]);
    // scanned a minute ago: four minutes left
    assert_eq!(
        scan_due(&obj, &status, canonical, 2, interval, now),
        Err(Duration::from_secs(240))
    );
    assert_eq!(
        scan_due(&obj, &status, canonical, 0, interval, now),
        Ok("no tags in database")
    );
    assert_eq!(
        scan_due(&obj, &status, "ghcr.io/org/other", 2, interval, now),
        Ok("new image name")
    );
    let mut changed = obj.clone();
    changed.spec.exclusion_list = Some(vec!["^dev-".into()]);
    assert_eq!(
        scan_due(&changed, &status, canonical, 2, interval, now),
        Ok("updated exclusion list")
    );
    let mut requested = obj.clone();
    requested
        .annotations_mut()
        .insert("reconcile.fluxcd.io/requestedAt".into(), "now".into());
    assert_eq!(
        scan_due(&requested, &status, canonical, 2, interval, now),
        Ok("reconcile requested")
    );
    status.reconcile_request.last_handled_reconcile_at = Some("now".into());
    assert!(scan_due(&requested, &status, canonical, 2, interval, now).is_err());
    let later = now + jiff_secs(240);
    assert_eq!(
        scan_due(&obj, &status, canonical, 2, interval, later),
        Ok("triggered by interval")
    );
}

#[test]
fn excluded_tags_are_dropped_and_the_rest_sorted_newest_first() {
    let tags = ["1.0.0", "sha256-abc.sig", "1.1.0", "dev-1", "0.9.0"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        kept_tags(tags.clone(), &[DEFAULT_EXCLUSION.into()]).unwrap(),
        ["dev-1", "1.1.0", "1.0.0", "0.9.0"]
    );
    assert_eq!(
        kept_tags(tags.clone(), &[DEFAULT_EXCLUSION.into(), "^dev-".into()]).unwrap(),
        ["1.1.0", "1.0.0", "0.9.0"]
    );
    let err = kept_tags(tags, &["([".into()]).unwrap_err();
    assert!(err.to_string().contains("failed to compile regex (["), "{err}");
    assert_eq!(err.class(), ErrorClass::Stalled);
}

#[test]
fn summarize_says_what_was_found_or_what_failed() {
    let obj = repo("ghcr.io/org/app");
    let mut status = ImageRepositoryStatus {
        last_scan_result: Some(ScanResult {
            revision: Some("4030726461".into()),
            tag_count: 3,
            scan_time: None,
            latest_tags: None,
        }),
        ..Default::default()
    };
    conditions::mark_true(&mut status.conditions, RECONCILING, "Progressing", "x", Some(1));
    let ok = Ok(Scanned {
        scanned: true,
        changed: true,
        next: Duration::from_secs(300),
    });
    summarize(&obj, &mut status, &ok);
    let ready = conditions::get(&status.conditions, READY).unwrap();
    assert_eq!(ready.status, "True");
    assert_eq!(
        ready.message,
        "successful scan: found 3 tags with checksum 4030726461"
    );
    assert!(conditions::get(&status.conditions, RECONCILING).is_none());

    let failed = Err(Error::Scan(driftless_oci::Error::Registry(
        "connection refused".into(),
    )));
    summarize(&obj, &mut status, &failed);
    let ready = conditions::get(&status.conditions, READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", READ_OPERATION_FAILED)
    );
    assert_eq!(ready.message, "scan failed: connection refused");
    // retried: still reconciling, not stalled; the last scan stays
    assert!(conditions::is_true(&status.conditions, RECONCILING));
    assert!(conditions::get(&status.conditions, STALLED).is_none());
    assert_eq!(status.last_scan_result.as_ref().unwrap().tag_count, 3);

    let bad = Err(parse_image("ghcr.io/org/app:1").unwrap_err());
    summarize(&obj, &mut status, &bad);
    assert!(conditions::is_true(&status.conditions, STALLED));
}

fn jiff_secs(n: i64) -> k8s_openapi::jiff::SignedDuration {
    k8s_openapi::jiff::SignedDuration::from_secs(n)
}
