//! Commit and push, for image automation: a working clone of one branch ([`Worktree::clone`]), changed
//! by the caller, committed as an author ([`Worktree::commit`]) and pushed to a branch
//! ([`Worktree::push`]) — with the credentials, CA, client certificate and proxy every fetch uses. A push
//! is never forced: when the remote branch moved meanwhile it is refused ([`Error::Rejected`]), and the
//! caller starts again from a fresh clone.

use std::path::Path;

use git2::{FetchOptions, IndexAddOption, PushOptions, Repository, Signature, build::RepoBuilder};

use crate::{
    Error, Result,
    auth::RemoteUrl,
    cache::{Cache, Options, classify},
    reference::{Reference, Resolved},
};

/// Who commits.
#[derive(Clone, Copy, Debug)]
pub struct Author<'a> {
    /// `spec.git.commit.author.name`.
    pub name: &'a str,
    /// `spec.git.commit.author.email`.
    pub email: &'a str,
}

/// A working clone of one branch.
pub struct Worktree {
    repo: Repository,
}

fn git_err(context: &'static str) -> impl FnOnce(git2::Error) -> Error {
    move |source| Error::Git {
        context: context.to_string(),
        source,
    }
}

impl Worktree {
    /// Clones `branch` of `opts.url` into `dir` (missing or empty).
    pub fn clone(opts: Options<'_>, branch: &str, dir: &Path) -> Result<Self> {
        let url = RemoteUrl::parse(opts.url)?;
        let bridge = Cache::bridge(&opts, false)?;
        let headers = opts.auth.headers();
        let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
        let mut fetch = FetchOptions::new();
        fetch
            .remote_callbacks(opts.auth.callbacks(&url))
            .custom_headers(&header_refs);
        let repo = RepoBuilder::new()
            .branch(branch)
            .fetch_options(fetch)
            .clone(bridge.as_ref().map_or(opts.url, |b| &b.url), dir)
            .map_err(|e| {
                if e.code() == git2::ErrorCode::NotFound || e.message().contains("not found") {
                    Error::RefNotFound(format!(
                        "unable to clone '{}': branch '{branch}' not found",
                        opts.url
                    ))
                } else {
                    classify(e, opts.url, bridge.as_ref(), "unable to clone")
                }
            })?;
        Ok(Self { repo })
    }

    /// A working copy of `reference` of `opts.url` in `dir` (missing or empty), its commit checked out
    /// detached: a tag, the highest tag a semver range matches, a commit (on its branch when named) or a
    /// full reference name, fetched as GitRepository fetches them; a branch is cloned as
    /// [`Worktree::clone`] clones it. Returns the reference resolved (Flux's revision).
    pub fn clone_at(opts: Options<'_>, reference: &Reference, dir: &Path) -> Result<(Self, Resolved)> {
        if let Reference::Branch(branch) = reference {
            let worktree = Self::clone(opts, branch, dir)?;
            let commit = worktree.head()?;
            let resolved = Resolved {
                revision: format!("{branch}@sha1:{commit}"),
                commit,
                refname: Some(format!("refs/heads/{branch}")),
            };
            return Ok((worktree, resolved));
        }
        let url = RemoteUrl::parse(opts.url)?;
        let repo = Repository::init(dir).map_err(git_err("initialising a repository"))?;
        let bridge = Cache::bridge(&opts, false)?;
        let headers = opts.auth.headers();
        let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
        let mut fetch = FetchOptions::new();
        fetch
            .remote_callbacks(opts.auth.callbacks(&url))
            .custom_headers(&header_refs)
            .download_tags(git2::AutotagOption::None);
        {
            let mut remote = repo
                .remote_anonymous(bridge.as_ref().map_or(opts.url, |b| &b.url))
                .map_err(git_err("invalid remote URL"))?;
            remote
                .fetch(&reference.refspecs(), Some(&mut fetch), None)
                .map_err(|e| classify(e, opts.url, bridge.as_ref(), "unable to fetch"))?;
        }
        let resolved = crate::cache::resolve_fetched(&repo, reference)?;
        let oid = git2::Oid::from_str(&resolved.commit)
            .map_err(|_| Error::Invalid(format!("invalid commit '{}'", resolved.commit)))?;
        repo.set_head_detached(oid).map_err(git_err("checking out"))?;
        repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .map_err(git_err("checking out"))?;
        Ok((Self { repo }, resolved))
    }

    /// A new repository in `dir` with no commit yet, to start a branch of an empty remote (or a branch
    /// the remote does not have) with the first [`Worktree::commit`].
    pub fn init(dir: &Path) -> Result<Self> {
        let repo = Repository::init(dir).map_err(git_err("initialising a repository"))?;
        Ok(Self { repo })
    }

    /// The directory to change.
    pub fn path(&self) -> &Path {
        self.repo.workdir().expect("a clone has a work tree")
    }

    /// Commits every change of the work tree (new, changed and deleted files) on top of the commit
    /// checked out, as `author`; returns the new commit's SHA-1, or `None` when nothing changed.
    pub fn commit(&self, author: &Author<'_>, message: &str) -> Result<Option<String>> {
        self.commit_signed(author, message, None)
    }

    /// [`Worktree::commit`], signed by `signer` when given (a `gpgsig` header, as `git commit -S`).
    pub fn commit_signed(
        &self,
        author: &Author<'_>,
        message: &str,
        signer: Option<&crate::sign::Signer>,
    ) -> Result<Option<String>> {
        let mut index = self.repo.index().map_err(git_err("reading the index"))?;
        index
            .add_all(["*"], IndexAddOption::DEFAULT, None)
            .map_err(git_err("adding changes"))?;
        index
            .update_all(["*"], None)
            .map_err(git_err("recording deletions"))?;
        index.write().map_err(git_err("writing the index"))?;
        let tree_id = index.write_tree().map_err(git_err("writing the tree"))?;
        // an unborn branch (a new repository) has no commit: the first one has no parent
        let head = match self.repo.head() {
            Ok(h) => Some(h.peel_to_commit().map_err(git_err("reading HEAD"))?),
            Err(e) if e.code() == git2::ErrorCode::UnbornBranch => None,
            Err(e) => return Err(git_err("reading HEAD")(e)),
        };
        if head.as_ref().map(|h| h.tree_id()) == Some(tree_id) {
            return Ok(None);
        }
        let parents: Vec<&git2::Commit<'_>> = head.iter().collect();
        let tree = self
            .repo
            .find_tree(tree_id)
            .map_err(git_err("reading the tree"))?;
        let signature = Signature::now(author.name, author.email).map_err(|e| {
            Error::Invalid(format!(
                "invalid commit author '{} <{}>': {}",
                author.name,
                author.email,
                e.message()
            ))
        })?;
        let oid = match signer {
            None => self
                .repo
                .commit(Some("HEAD"), &signature, &signature, message, &tree, &parents)
                .map_err(git_err("committing"))?,
            Some(signer) => {
                let buffer = self
                    .repo
                    .commit_create_buffer(&signature, &signature, message, &tree, &parents)
                    .map_err(git_err("writing the commit"))?;
                let content = std::str::from_utf8(&buffer)
                    .map_err(|e| Error::Invalid(format!("the commit is not UTF-8: {e}")))?;
                let gpgsig = signer.sign(content.as_bytes())?;
                let oid = self
                    .repo
                    .commit_signed(content, &gpgsig, None)
                    .map_err(git_err("writing the signed commit"))?;
                let head_ref = self
                    .repo
                    .find_reference("HEAD")
                    .map_err(git_err("reading HEAD"))?;
                match head_ref.symbolic_target().ok().flatten().map(str::to_string) {
                    Some(branch) => {
                        self.repo
                            .reference(&branch, oid, true, "commit (signed)")
                            .map_err(git_err("moving the branch"))?;
                    }
                    // a detached checkout (a tag, a commit): HEAD itself moves
                    None => self.repo.set_head_detached(oid).map_err(git_err("moving HEAD"))?,
                }
                oid
            }
        };
        Ok(Some(oid.to_string()))
    }

    /// The commit checked out (after [`Worktree::commit`], the new one).
    pub fn head(&self) -> Result<String> {
        let head = self
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(git_err("reading HEAD"))?;
        Ok(head.id().to_string())
    }

    /// Pushes HEAD to the branch `branch` of `opts.url`. Refused ([`Error::Rejected`]) when that is not
    /// a fast-forward (someone pushed meanwhile) or the server declines the update.
    pub fn push(&self, opts: Options<'_>, branch: &str) -> Result<()> {
        self.push_refspec(opts, &format!("HEAD:refs/heads/{branch}"))
    }

    /// Pushes `refspec` (`<local>:<remote>`; a leading `+` forces it, as git's) to `opts.url`, refused
    /// as [`Worktree::push`] is.
    pub fn push_refspec(&self, opts: Options<'_>, refspec: &str) -> Result<()> {
        let url = RemoteUrl::parse(opts.url)?;
        let bridge = Cache::bridge(&opts, false)?;
        let mut remote = self
            .repo
            .remote_anonymous(bridge.as_ref().map_or(opts.url, |b| &b.url))
            .map_err(git_err("invalid remote URL"))?;
        let refused = std::cell::RefCell::new(None::<String>);
        {
            let mut callbacks = opts.auth.callbacks(&url);
            callbacks.push_update_reference(|refname, status| {
                if let Some(status) = status {
                    *refused.borrow_mut() = Some(format!("{refname}: {status}"));
                }
                Ok(())
            });
            let headers = opts.auth.headers();
            let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
            let mut push = PushOptions::new();
            push.remote_callbacks(callbacks).custom_headers(&header_refs);
            remote.push(&[refspec], Some(&mut push)).map_err(|e| {
                if e.code() == git2::ErrorCode::NotFastForward || e.message().contains("fast-forward") {
                    Error::Rejected(format!(
                        "push of '{refspec}' to '{}' rejected: the branch moved, it is not a fast-forward",
                        opts.url
                    ))
                } else {
                    classify(e, opts.url, bridge.as_ref(), "unable to push")
                }
            })?;
        }
        drop(remote);
        if let Some(status) = refused.into_inner() {
            return Err(Error::Rejected(format!(
                "push to '{}' rejected by the server: {status}",
                opts.url
            )));
        }
        Ok(())
    }
}
