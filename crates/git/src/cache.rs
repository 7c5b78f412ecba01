//! One bare repository per remote URL, shared by every GitRepository that uses it: fetches are
//! incremental, concurrent users of one URL take turns, and [`Cache::ls_remote`] answers "did the ref
//! move?" with one round trip and no fetch.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use git2::{Direction, FetchOptions, ObjectType, Repository};
use sha2::{Digest, Sha256};

use crate::{
    Auth, Error, Reference, Resolved, Result, auth::RemoteUrl, reference::commit_revision, tls::Bridge,
};

/// How to talk to a remote.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// The repository URL.
    pub url: &'a str,
    /// Its credentials.
    pub auth: &'a Auth,
    /// A proxy URL (`http://user:pass@host:port`).
    pub proxy: Option<&'a str>,
    /// The deadline of the whole operation.
    pub timeout: Duration,
}

/// A commit written out to a directory.
#[derive(Clone, Debug)]
pub struct Checkout {
    /// What was checked out.
    pub resolved: Resolved,
    /// The first line of the commit message.
    pub subject: String,
}

/// The bare repositories, under `root`.
pub struct Cache {
    root: PathBuf,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

fn git_err(context: impl Into<String>) -> impl FnOnce(git2::Error) -> Error {
    let context = context.into();
    move |source| Error::Git { context, source }
}

impl Cache {
    /// A cache in `root` (created on first use).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            locks: Mutex::default(),
        }
    }

    pub(crate) fn repo_path(&self, url: &str) -> PathBuf {
        self.repo_dir(url)
    }

    fn repo_dir(&self, url: &str) -> PathBuf {
        let hash = hex::encode(Sha256::digest(url.as_bytes()));
        self.root.join(format!("{}.git", &hash[..24]))
    }

    fn lock(&self, url: &str) -> Arc<Mutex<()>> {
        self.locks
            .lock()
            .expect("cache lock map")
            .entry(url.to_string())
            .or_default()
            .clone()
    }

    /// A bridge (see [`crate::tls`]) for an HTTP(S) remote that needs a CA or client certificate of its
    /// own, or a proxy (`proxySecretRef`'s, or the environment's `HTTP(S)_PROXY`/`ALL_PROXY`): libgit2
    /// verifies TLS against the process's store only, and ignores its proxy option for `http://` URLs
    /// (it connects to the server directly), so the bridge does both. `ls_remote` also needs one for a
    /// bearer token (`for_headers`): libgit2 sends custom headers when fetching only.
    pub(crate) fn bridge(opts: &Options<'_>, for_headers: bool) -> Result<Option<Bridge>> {
        let http = opts.url.starts_with("https://") || opts.url.starts_with("http://");
        let bearer = opts.auth.bearer_token.as_deref();
        let needed = opts.auth.tls.is_set()
            || opts.proxy.is_some()
            || crate::tls::env_proxy()
            || (for_headers && bearer.is_some());
        if http && needed {
            Bridge::start(opts.url, &opts.auth.tls, opts.proxy, bearer).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The refs the remote advertises, `(name, oid)`, peeled tags as `name^{}`.
    pub fn ls_remote(&self, opts: Options<'_>) -> Result<Vec<(String, String)>> {
        let url = RemoteUrl::parse(opts.url)?;
        let bridge = Self::bridge(&opts, true)?;
        let mut remote = git2::Remote::create_detached(bridge.as_ref().map_or(opts.url, |b| &b.url))
            .map_err(git_err(format!("invalid URL '{}'", opts.url)))?;
        let connection = remote
            .connect_auth(Direction::Fetch, Some(opts.auth.callbacks(&url)), None)
            .map_err(|e| classify(e, opts.url, bridge.as_ref(), "unable to list remote refs"))?;
        let heads = connection
            .list()
            .map_err(git_err("listing remote refs"))?
            .iter()
            .map(|h| (h.name().to_string(), h.oid().to_string()))
            .collect();
        Ok(heads)
    }

    /// Fetches what `reference` needs into the URL's bare repository and resolves it there.
    pub fn fetch(&self, opts: Options<'_>, reference: &Reference) -> Result<Resolved> {
        let url = RemoteUrl::parse(opts.url)?;
        let lock = self.lock(opts.url);
        let _guard = lock.lock().expect("repository lock");
        let dir = self.repo_dir(opts.url);
        let repo = match Repository::open_bare(&dir) {
            Ok(r) => r,
            Err(_) => {
                std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
                    context: format!("creating {}", dir.display()),
                    source,
                })?;
                Repository::init_bare(&dir).map_err(git_err(format!("initialising {}", dir.display())))?
            }
        };
        let deadline = Instant::now() + opts.timeout;
        let mut callbacks = opts.auth.callbacks(&url);
        callbacks.transfer_progress(move |_| Instant::now() < deadline);
        let headers = opts.auth.headers();
        let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
        let bridge = Self::bridge(&opts, false)?;
        let mut fetch = FetchOptions::new();
        fetch
            .remote_callbacks(callbacks)
            .custom_headers(&header_refs)
            .prune(git2::FetchPrune::On);
        let mut remote = repo
            .remote_anonymous(bridge.as_ref().map_or(opts.url, |b| &b.url))
            .map_err(git_err(format!("invalid URL '{}'", opts.url)))?;
        let refspecs = reference.refspecs();
        remote.fetch(&refspecs, Some(&mut fetch), None).map_err(|e| {
            if Instant::now() >= deadline {
                Error::Timeout(opts.timeout)
            } else {
                classify(e, opts.url, bridge.as_ref(), "unable to fetch")
            }
        })?;
        drop(remote);
        drop(bridge);
        resolve_fetched(&repo, reference)
    }

    /// Writes the tree of `resolved` (fetched before) into `dest`, only under `sparse` directories when
    /// given. Symlinks are not written (they are never archived). With `submodules` (the options to reach
    /// them: the parent's credentials), submodules are fetched into the cache too and written at their
    /// recorded commit.
    pub fn checkout(
        &self,
        url: &str,
        resolved: &Resolved,
        dest: &Path,
        sparse: Option<&[String]>,
        submodules: Option<Options<'_>>,
    ) -> Result<Checkout> {
        let lock = self.lock(url);
        let guard = lock.lock().expect("repository lock");
        let repo =
            Repository::open_bare(self.repo_dir(url)).map_err(git_err("opening the cached repository"))?;
        let oid = git2::Oid::from_str(&resolved.commit).map_err(git_err("parsing the commit"))?;
        let commit = repo
            .find_commit(oid)
            .map_err(git_err(format!("unable to find commit '{}'", resolved.commit)))?;
        let tree = commit.tree().map_err(git_err("reading the commit tree"))?;
        let sparse: Option<Vec<String>> = sparse.map(|dirs| {
            dirs.iter()
                .map(|d| d.trim_matches('/').trim_start_matches("./").to_string())
                .filter(|d| !d.is_empty())
                .collect()
        });
        let mut gitlinks = Vec::new();
        write_tree(&repo, &tree, dest, "", sparse.as_deref(), &mut gitlinks)?;
        let subject = commit.summary().ok().flatten().unwrap_or_default().to_string();
        let modules = match (&submodules, gitlinks.is_empty()) {
            (Some(_), false) => submodule_urls(&repo, &tree, url)?,
            _ => Vec::new(),
        };
        drop(guard);
        if let Some(opts) = submodules {
            for (path, sha) in gitlinks {
                let sub_url = modules
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, u)| u.clone())
                    .ok_or_else(|| {
                        Error::Invalid(format!("submodule at '{path}' has no URL in .gitmodules"))
                    })?;
                if sub_url == url {
                    return Err(Error::Invalid(format!(
                        "submodule at '{path}' points at the repository itself"
                    )));
                }
                let sub_opts = Options {
                    url: &sub_url,
                    ..opts
                };
                let sub = self.fetch(sub_opts, &Reference::Commit { sha, branch: None })?;
                self.checkout(&sub_url, &sub, &dest.join(&path), None, Some(sub_opts))?;
            }
        }
        Ok(Checkout {
            resolved: resolved.clone(),
            subject,
        })
    }
}

/// `(path, url)` of every submodule in `.gitmodules`, relative URLs resolved against `parent`.
fn submodule_urls(repo: &Repository, tree: &git2::Tree<'_>, parent: &str) -> Result<Vec<(String, String)>> {
    let entry = tree
        .get_path(Path::new(".gitmodules"))
        .map_err(git_err("reading .gitmodules"))?;
    let blob = entry
        .to_object(repo)
        .and_then(|o| o.peel_to_blob())
        .map_err(git_err("reading .gitmodules"))?;
    let text = String::from_utf8_lossy(blob.content()).to_string();
    let mut modules: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("[submodule") {
            modules.push((line.to_string(), None, None));
        } else if let (Some((key, value)), Some(last)) = (line.split_once('='), modules.last_mut()) {
            match key.trim() {
                "path" => last.1 = Some(value.trim().to_string()),
                "url" => last.2 = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    Ok(modules
        .into_iter()
        .filter_map(|(_, path, url)| Some((path?, resolve_relative_url(parent, &url?))))
        .collect())
}

/// Resolves a submodule URL relative to its superproject's URL, as git does (`../lib.git`).
pub fn resolve_relative_url(parent: &str, url: &str) -> String {
    if !url.starts_with("./") && !url.starts_with("../") {
        return url.to_string();
    }
    let mut base: Vec<&str> = parent.trim_end_matches('/').split('/').collect();
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("../") {
            base.pop();
            rest = r;
        } else if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else {
            break;
        }
    }
    format!("{}/{rest}", base.join("/"))
}

/// The refs of a local repository, peeled tags as `name^{}`, like a remote advertises them.
/// Resolves `reference` in `repo`, whose objects and refs it needs were fetched: a commit must be there,
/// anything else is looked up among the local refs.
pub(crate) fn resolve_fetched(repo: &Repository, reference: &Reference) -> Result<Resolved> {
    match reference {
        Reference::Commit { sha, branch } => {
            let oid = git2::Oid::from_str(sha)
                .map_err(|_| Error::Invalid(format!("invalid commit SHA '{sha}'")))?;
            repo.find_commit(oid).map_err(|_| {
                Error::RefNotFound(format!(
                    "unable to resolve commit '{sha}'{}",
                    branch
                        .as_ref()
                        .map(|b| format!(" in branch '{b}'"))
                        .unwrap_or_default()
                ))
            })?;
            Ok(Resolved {
                revision: commit_revision(branch.as_deref(), sha),
                commit: sha.clone(),
                refname: branch.as_ref().map(|b| format!("refs/heads/{b}")),
            })
        }
        other => other
            .resolve(&local_heads(repo)?)?
            .ok_or_else(|| Error::RefNotFound("unresolvable reference".into())),
    }
}

pub(crate) fn local_heads(repo: &Repository) -> Result<Vec<(String, String)>> {
    let mut heads = Vec::new();
    for r in repo.references().map_err(git_err("listing references"))? {
        let r = r.map_err(git_err("reading a reference"))?;
        let (Ok(name), Some(target)) = (r.name(), r.target()) else {
            continue;
        };
        heads.push((name.to_string(), target.to_string()));
        if let Ok(commit) = r.peel_to_commit()
            && commit.id() != target
        {
            heads.push((format!("{name}^{{}}"), commit.id().to_string()));
        }
    }
    Ok(heads)
}

/// Maps libgit2's failure to an auth error where that is what it is, with the URL for context; through a
/// TLS bridge, the bridge's own failure (an untrusted certificate, say) is the error.
pub(crate) fn classify(e: git2::Error, url: &str, bridge: Option<&Bridge>, what: &str) -> Error {
    if let Some(message) = bridge.and_then(Bridge::failure) {
        return Error::Connection {
            url: url.to_string(),
            message,
        };
    }
    let msg = e.message().to_lowercase();
    if e.code() == git2::ErrorCode::Certificate || msg.contains("hostkey") {
        return Error::Auth {
            url: url.to_string(),
            message: format!(
                "host key verification failed: the server's key is not in known_hosts ({})",
                e.message()
            ),
        };
    }
    let auth = e.code() == git2::ErrorCode::Auth
        || e.code() == git2::ErrorCode::Certificate
        || msg.contains("401")
        || msg.contains("403")
        || msg.contains("authentication")
        || msg.contains("credentials")
        || msg.contains("known_hosts");
    if auth {
        Error::Auth {
            url: url.to_string(),
            message: e.message().to_string(),
        }
    } else {
        Error::Git {
            context: format!("{what} '{url}'"),
            source: e,
        }
    }
}

fn in_sparse(path: &str, sparse: Option<&[String]>, is_dir: bool) -> bool {
    let Some(dirs) = sparse else { return true };
    dirs.iter().any(|d| {
        path == d || path.starts_with(&format!("{d}/")) || (is_dir && d.starts_with(&format!("{path}/")))
    })
}

fn write_tree(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    dir: &Path,
    prefix: &str,
    sparse: Option<&[String]>,
    gitlinks: &mut Vec<(String, String)>,
) -> Result<()> {
    let io = |context: String| move |source| Error::Io { context, source };
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    for entry in tree.iter() {
        let name = entry
            .name()
            .map_err(|_| Error::Invalid("a file name in the repository is not UTF-8".into()))?;
        if name == ".." || name == "." || name.contains('/') {
            return Err(Error::Invalid(format!("refusing tree entry {name:?}")));
        }
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let target = dir.join(name);
        match entry.kind() {
            Some(ObjectType::Tree) if in_sparse(&path, sparse, true) => {
                let sub = entry
                    .to_object(repo)
                    .and_then(|o| o.peel_to_tree())
                    .map_err(git_err("reading a tree"))?;
                write_tree(repo, &sub, &target, &path, sparse, gitlinks)?;
            }
            Some(ObjectType::Blob) if entry.filemode() != 0o120000 && in_sparse(&path, sparse, false) => {
                let blob = entry
                    .to_object(repo)
                    .and_then(|o| o.peel_to_blob())
                    .map_err(git_err("reading a file"))?;
                std::fs::write(&target, blob.content())
                    .map_err(io(format!("writing {}", target.display())))?;
                if entry.filemode() == 0o100755 {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                        .map_err(io(format!("setting the mode of {}", target.display())))?;
                }
            }
            Some(ObjectType::Commit) => gitlinks.push((path, entry.id().to_string())),
            _ => {}
        }
    }
    Ok(())
}
