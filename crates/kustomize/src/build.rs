//! The build: load a kustomization (or generate one), gather its resources depth first, apply its
//! transformers, and sort the result in kustomize's legacy order.

use std::path::{Path, PathBuf};

use crate::{
    Error, Object, Result,
    kustomization::{FILE_NAMES, Kustomization, PatchEntry, SortOptions},
    order::{field, legacy_sort, legacy_sort_with},
    origin::{self as track, MadeBy, Origin},
    transform::{self, Res},
    yaml,
};

/// Builds the kustomization at `path` (relative to `root`, or absolute under it). Nothing outside
/// `root` may be read. When `path` has no kustomization file, one listing its YAML files is generated,
/// as Flux does.
pub fn build(root: &Path, path: &Path) -> Result<Vec<Object>> {
    let mut objects = build_marked(root, path)?;
    objects.iter_mut().for_each(yaml::strip_marks);
    Ok(objects)
}

/// [`build`], keeping the [`yaml::PLAIN`] marks of plain scalars that hold `${`, for
/// [`crate::substitute`]; the marks must be removed (it does) before the objects go anywhere else.
pub fn build_marked(root: &Path, path: &Path) -> Result<Vec<Object>> {
    build_marked_with(root, path, None)
}

/// [`build`], with SOPS-encrypted inputs (documents, generator files) decrypted by `decrypt`.
pub fn build_with(root: &Path, path: &Path, decrypt: Option<&dyn yaml::Decrypt>) -> Result<Vec<Object>> {
    let mut objects = build_marked_with(root, path, decrypt)?;
    objects.iter_mut().for_each(yaml::strip_marks);
    Ok(objects)
}

/// [`build_marked`] with a decryptor.
pub fn build_marked_with(
    root: &Path,
    path: &Path,
    decrypt: Option<&dyn yaml::Decrypt>,
) -> Result<Vec<Object>> {
    let canonical = root.canonicalize().map_err(|source| Error::Io {
        path: root.display().to_string(),
        source,
    })?;
    let root = Root {
        path: canonical,
        files_in_own_dir: false,
    };
    let dir = root.dir(&root.path.join(path), &root.path)?;
    build_in(&root, dir, decrypt)
}

/// What `kubectl kustomize` lets a build read besides its kustomizations' directories.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadRestrictor {
    /// `LoadRestrictionsRootOnly`, kustomize's default: the files a kustomization names (resources,
    /// patches, generator sources, configurations…) must be in or below its own directory; bases and
    /// components may be anywhere.
    #[default]
    RootOnly,
    /// `LoadRestrictionsNone`: files may be anywhere.
    None,
}

/// Builds the kustomization in `dir` as `kubectl kustomize DIR` does (`--load-restrictor`): bases and
/// components may live outside `dir` (`../base`), files as `restrictor` says. The controllers use
/// [`build`] instead, which confines everything to the artifact's root, as Flux does.
pub fn build_standalone(dir: &Path, restrictor: LoadRestrictor) -> Result<Vec<Object>> {
    let root = Root {
        path: PathBuf::from("/"),
        files_in_own_dir: restrictor == LoadRestrictor::RootOnly,
    };
    let dir = root.dir(dir, dir)?;
    let mut objects = build_in(&root, dir, None)?;
    objects.iter_mut().for_each(yaml::strip_marks);
    Ok(objects)
}

fn build_in(root: &Root, dir: PathBuf, decrypt: Option<&dyn yaml::Decrypt>) -> Result<Vec<Object>> {
    let mut walk = Walk {
        dirs: Vec::new(),
        vars: Vec::new(),
        decrypt,
        config: Default::default(),
        track: None,
        build_metadata: Vec::new(),
    };
    let mut resources = load_dir(root, &dir, &mut walk, true)?;
    // generated objects get their content hash once everything else is done, and references follow
    let renames = crate::generate::apply_hashes(&mut resources);
    crate::refs::apply(&mut resources, &renames, &walk.config.name_references);
    crate::vars::apply(&walk.vars, &mut resources, &walk.config.var_references).map_err(|message| {
        Error::Invalid {
            path: dir.display().to_string(),
            message,
        }
    })?;
    let mut objects: Vec<Object> = resources.into_iter().map(|r| r.obj).collect();
    track::finish(&mut objects, &walk.build_metadata);
    let sort = match kustomization_file(&dir)? {
        Some(file) => {
            let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
                path: file.display().to_string(),
                source,
            })?;
            Kustomization::parse(&text, &file.display().to_string())?.sort_options
        }
        None => None,
    };
    match sort {
        Some(SortOptions {
            order: Some(order), ..
        }) if order == "fifo" => {}
        Some(SortOptions {
            legacy_sort_options: Some(l),
            ..
        }) => legacy_sort_with(&mut objects, &l.order_first, &l.order_last),
        Some(SortOptions {
            order: Some(order), ..
        }) if order != "legacy" => {
            return Err(Error::Invalid {
                path: dir.display().to_string(),
                message: format!("unknown sortOptions.order '{order}': use legacy or fifo"),
            });
        }
        _ => legacy_sort(&mut objects),
    }
    Ok(objects)
}

/// Where a build may read: everything under `path` (`/` for `kubectl kustomize`); with
/// `files_in_own_dir` a kustomization's files must also be in or below its own directory.
struct Root {
    path: PathBuf,
    files_in_own_dir: bool,
}

impl Root {
    /// A directory (a base, a component, a resource entry), canonicalised and inside the root.
    fn dir(&self, path: &Path, from: &Path) -> Result<PathBuf> {
        inside(&self.path, path, from)
    }

    /// A file a kustomization in `dir` names.
    fn file(&self, dir: &Path, path: &Path, from: &Path) -> Result<PathBuf> {
        let file = inside(&self.path, path, from)?;
        self.own(dir, &file, from)?;
        Ok(file)
    }

    /// Refuses `file` outside `dir` under `LoadRestrictionsRootOnly`, in kustomize's words.
    fn own(&self, dir: &Path, file: &Path, from: &Path) -> Result<()> {
        if self.files_in_own_dir && !file.starts_with(dir) {
            return Err(Error::Invalid {
                path: from.display().to_string(),
                message: format!(
                    "security; file '{}' is not in or below '{}' (--load-restrictor LoadRestrictionsNone allows it)",
                    file.display(),
                    dir.display()
                ),
            });
        }
        Ok(())
    }
}

/// `path` canonicalised, refused when it leaves `root` (`..`, symlinks).
fn inside(root: &Path, path: &Path, from: &Path) -> Result<PathBuf> {
    let canonical = path.canonicalize().map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    if !canonical.starts_with(root) {
        return Err(Error::Invalid {
            path: from.display().to_string(),
            message: format!(
                "'{}' is outside the build root '{}'",
                path.display(),
                root.display()
            ),
        });
    }
    Ok(canonical)
}

fn kustomization_file(dir: &Path) -> Result<Option<PathBuf>> {
    let found: Vec<PathBuf> = FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        _ => Err(Error::Invalid {
            path: dir.display().to_string(),
            message: format!("found multiple kustomization files: {}", FILE_NAMES.join(", ")),
        }),
    }
}

fn is_remote(entry: &str) -> bool {
    entry.contains("://")
        || entry.starts_with("git@")
        || entry.starts_with("github.com/")
        || entry.starts_with("gitlab.com/")
}

/// The directories being loaded (to find cycles), the `vars` declared by every level, and the decryptor.
struct Walk<'a> {
    dirs: Vec<PathBuf>,
    vars: Vec<crate::vars::Var>,
    decrypt: Option<&'a dyn yaml::Decrypt>,
    /// The field specs and name references the `configurations` and `crds` met so far add (they hold
    /// for the levels above too, as kustomize merges them upward).
    config: crate::plugins::Configuration,
    /// With `buildMetadata`: the path of the directory being loaded from the build's ([`crate::origin`]).
    track: Option<String>,
    /// The top kustomization's `buildMetadata`.
    build_metadata: Vec<String>,
}

/// `entry` of the kustomization in `dir`: loaded with the origin path tracked (a file's objects get it).
fn load_tracked(root: &Root, target: &Path, entry: &str, walk: &mut Walk<'_>) -> Result<Vec<Res>> {
    let parent = walk.track.clone();
    let path = parent.as_deref().map(|t| track::join(t, entry));
    walk.track = path.clone();
    let loaded = load_resource(root, target, walk);
    walk.track = parent;
    let mut loaded = loaded?;
    if let Some(path) = path.filter(|_| target.is_file()) {
        let origin = Origin::file(path);
        loaded.iter_mut().for_each(|r| track::set(&mut r.obj, &origin));
    }
    Ok(loaded)
}

/// The component `entry` of the kustomization in `dir`: loaded with the origin path tracked.
fn load_component_tracked(
    root: &Root,
    target: &Path,
    entry: &str,
    walk: &mut Walk<'_>,
    accumulated: &mut Vec<Res>,
) -> Result<()> {
    let parent = walk.track.clone();
    walk.track = parent.as_deref().map(|t| track::join(t, entry));
    let loaded = load_component(root, target, walk, accumulated);
    walk.track = parent;
    loaded
}

fn load_dir(root: &Root, dir: &Path, walk: &mut Walk<'_>, top: bool) -> Result<Vec<Res>> {
    if walk.dirs.contains(&dir.to_path_buf()) {
        return Err(Error::Invalid {
            path: dir.display().to_string(),
            message: format!(
                "cycle detected: {} → {}",
                walk.dirs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" → "),
                dir.display()
            ),
        });
    }
    let (kustomization, origin) = match kustomization_file(dir)? {
        Some(file) => {
            let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
                path: file.display().to_string(),
                source,
            })?;
            (Kustomization::parse(&text, &file.display().to_string())?, file)
        }
        None if top => (generated(dir)?, dir.to_path_buf()),
        None => {
            return Err(Error::Invalid {
                path: dir.display().to_string(),
                message: format!(
                    "unable to find one of {} in directory",
                    FILE_NAMES
                        .iter()
                        .map(|n| format!("'{n}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    };
    // NB: a Component built directly is built as a Kustomization, as kustomize does; as a resource it is
    // refused, as kustomize refuses it
    if kustomization.kind.as_deref() == Some("Component") && !top {
        return Err(Error::Invalid {
            path: origin.display().to_string(),
            message: "expected kind != 'Component': a Component goes in `components`, not `resources`".into(),
        });
    }
    if top && !kustomization.build_metadata.is_empty() {
        walk.track = Some(String::new());
        walk.build_metadata = kustomization.build_metadata.clone();
    }
    // `openapi`: the top kustomization's schema, else the first a base or component names (kustomize's)
    if walk.config.openapi.is_none() {
        walk.config.openapi = openapi_schema(root, dir, &origin, &kustomization)?;
    }
    for crd in &kustomization.crds {
        let declared = openapi_definitions(root, dir, &origin, crd)?;
        walk.config.name_references.extend(declared);
    }
    for entry in &kustomization.configurations {
        let c = configuration(root, dir, &origin, entry)?;
        walk.config.labels.extend(c.labels);
        walk.config.common_labels.extend(c.common_labels);
        walk.config.common_annotations.extend(c.common_annotations);
        walk.config.name_references.extend(c.name_references);
        walk.config.name_prefix.extend(c.name_prefix);
        walk.config.name_suffix.extend(c.name_suffix);
        walk.config.namespace.extend(c.namespace);
        walk.config.var_references.extend(c.var_references);
        walk.config.images.extend(c.images);
        walk.config.replicas.extend(c.replicas);
    }
    walk.dirs.push(dir.to_path_buf());
    walk.vars.extend(kustomization.vars.iter().cloned());
    let mut resources = Vec::new();
    for entry in kustomization.resources.iter().chain(&kustomization.bases) {
        if is_remote(entry) {
            return Err(Error::Invalid {
                path: origin.display().to_string(),
                message: format!(
                    "remote resource '{entry}' refused: remote resources not allowed (--no-remote-bases=true; vendor it into the repository)"
                ),
            });
        }
        let target = root.dir(&dir.join(entry), &origin)?;
        if target.is_file() {
            root.own(dir, &target, &origin)?;
        }
        resources.extend(load_tracked(root, &target, entry, walk)?);
    }
    // the generators, then the components (which see what the generators made), then the transformers:
    // kustomize's order
    let level = Level::new(root, dir, &origin, walk);
    level.generate(&kustomization, &mut resources)?;
    for entry in &kustomization.components {
        if is_remote(entry) {
            return Err(Error::Invalid {
                path: origin.display().to_string(),
                message: format!(
                    "remote component '{entry}' refused: remote resources not allowed (--no-remote-bases=true; vendor it into the repository)"
                ),
            });
        }
        let target = root.dir(&dir.join(entry), &origin)?;
        load_component_tracked(root, &target, entry, walk, &mut resources)?;
    }
    walk.dirs.pop();
    check_unique(&resources, &origin)?;
    transform_level(&level, &kustomization, &mut resources, &walk.config)?;
    crate::vars::bind(&kustomization.vars, &mut resources).map_err(|message| Error::Invalid {
        path: origin.display().to_string(),
        message,
    })?;
    resources.iter_mut().for_each(Res::end_level);
    // what is marked local configuration (a replacement's source, say) served its level and goes
    resources.retain(|r| {
        field(
            &r.obj,
            &["metadata", "annotations", "config.kubernetes.io/local-config"],
        ) != "true"
    });
    Ok(resources)
}

/// `configMapGenerator` and `secretGenerator`: new objects (`create`), or data merged into (`merge`) or
/// replacing (`replace`) those of the same name from the resources so far.
fn run_generators(
    level: &Level,
    k: &Kustomization,
    resources: &mut Vec<Res>,
    made_by: Option<&MadeBy>,
) -> Result<()> {
    let (root, dir, origin, decrypt) = (level.root, level.dir, level.file, level.decrypt);
    let invalid = |message: String| Error::Invalid {
        path: origin.display().to_string(),
        message,
    };
    let read = |path: &Path| -> std::result::Result<Vec<u8>, String> {
        let file = root.file(dir, path, origin).map_err(|e| e.to_string())?;
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", path.display()))?;
        match decrypt {
            Some(d) => d.file(bytes, path),
            None => Ok(bytes),
        }
    };
    let all = k
        .config_map_generator
        .iter()
        .map(|g| (g, false))
        .chain(k.secret_generator.iter().map(|g| (g, true)));
    for (g, secret) in all {
        let (mut obj, hashed) =
            crate::generate::generate(g, secret, k.generator_options.as_ref(), dir, &read)
                .map_err(&invalid)?;
        let made = made_by.map(|m| m.origin(secret));
        if let Some(made) = &made {
            track::set(&mut obj, made);
        }
        let kind = if secret { "Secret" } else { "ConfigMap" };
        let ns = g.namespace.clone().unwrap_or_default();
        let existing = resources.iter().position(|r| {
            field(&r.obj, &["kind"]) == kind
                && r.known_as(&g.name)
                && (field(&r.obj, &["metadata", "namespace"]) == ns || r.original_namespace == ns)
        });
        match (g.behavior.as_deref().unwrap_or("create"), existing) {
            ("create", _) => resources.push(Res {
                obj,
                original_name: g.name.clone(),
                original_namespace: ns.clone(),
                previous_names: Vec::new(),
                hashed,
                vars: Vec::new(),
            }),
            ("merge", Some(i)) => {
                // NB: the object merged into keeps its origin, as kustomize's does
                let kept = resources[i]
                    .obj
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(track::ORIGIN))
                    .cloned();
                crate::generate::merge_into(&mut resources[i].obj, &obj);
                if let Some(kept) = kept {
                    resources[i].obj["metadata"]["annotations"][track::ORIGIN] = kept;
                }
                // NB: a merge keeps an unhashed original unhashed, as kustomize does
                resources[i].hashed &= hashed;
            }
            ("replace", Some(i)) => {
                let name = resources[i].obj["metadata"]["name"].clone();
                resources[i].obj = obj;
                resources[i].obj["metadata"]["name"] = name;
                resources[i].hashed = hashed;
            }
            ("merge" | "replace", None) => {
                return Err(invalid(format!(
                    "id {kind}/{} does not exist; cannot merge or replace",
                    g.name
                )));
            }
            (other, _) => return Err(invalid(format!("unknown generator behavior '{other}'"))),
        }
    }
    Ok(())
}

/// The configurations `entries` of `generators` or `transformers` name: files (each may hold several
/// documents), inline YAML, or kustomization directories (like bases, anywhere) whose output they are.
/// Each comes with the path of the file it is written in, from the build's directory, when origins are
/// tracked.
fn plugin_configs(level: &Level, entries: &[String]) -> Result<Vec<(Object, Option<String>)>> {
    let (root, dir, origin, decrypt) = (level.root, level.dir, level.file, level.decrypt);
    let mut configs = Vec::new();
    // NB: kustomize reads the inline configurations first, then the files and directories
    let (inline, named): (Vec<&String>, Vec<&String>) = entries.iter().partition(|e| e.contains('\n'));
    for entry in inline.into_iter().chain(named) {
        let at = if entry.contains('\n') {
            level.configured_in.clone()
        } else {
            level.track.as_deref().map(|t| track::join(t, entry))
        };
        let (text, from) = if entry.contains('\n') {
            (entry.clone(), origin.display().to_string())
        } else if dir.join(entry).is_dir() {
            let target = root.dir(&dir.join(entry), origin)?;
            let mut walk = Walk {
                dirs: Vec::new(),
                vars: Vec::new(),
                decrypt,
                config: Default::default(),
                track: None,
                build_metadata: Vec::new(),
            };
            configs.extend(
                load_dir(root, &target, &mut walk, false)?
                    .into_iter()
                    .map(|r| (r.obj, at.clone())),
            );
            continue;
        } else {
            let file = root.file(dir, &dir.join(entry), origin)?;
            let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
                path: file.display().to_string(),
                source,
            })?;
            (text, file.display().to_string())
        };
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value =
                <serde_json::Value as serde::Deserialize>::deserialize(doc).map_err(|e| Error::Yaml {
                    path: from.clone(),
                    message: e.to_string(),
                })?;
            if !value.is_null() {
                configs.push((value, at.clone()));
            }
        }
    }
    Ok(configs)
}

/// `generators`: each configuration run as the kustomization field of the same generator would be.
fn run_generator_plugins(level: &Level, k: &Kustomization, resources: &mut Vec<Res>) -> Result<()> {
    let invalid = |message: String| Error::Invalid {
        path: level.file.display().to_string(),
        message,
    };
    for (config, at) in plugin_configs(level, &k.generators)? {
        let made_by = at.map(|file| MadeBy::Config(Origin::config(file, &config)));
        match crate::plugins::generator(&config).map_err(invalid)? {
            crate::plugins::Generated::KeyValues { generator, secret } => {
                let mut one = Kustomization::default();
                if secret {
                    one.secret_generator = vec![*generator];
                } else {
                    one.config_map_generator = vec![*generator];
                }
                run_generators(level, &one, resources, made_by.as_ref())?;
            }
            crate::plugins::Generated::Objects(objects) => {
                resources.extend(objects.into_iter().map(|mut obj| {
                    if let Some(made_by) = &made_by {
                        track::set_if_none(&mut obj, &made_by.origin(false));
                    }
                    Res::new(obj, false)
                }));
            }
        }
    }
    Ok(())
}

/// One level's patches and transformers, in kustomize's order: the kustomization's fields, then its
/// `transformers`, in order.
fn transform_level(
    level: &Level,
    k: &Kustomization,
    resources: &mut Vec<Res>,
    config: &crate::plugins::Configuration,
) -> Result<()> {
    let origin = level.file;
    let custom = config.name_references.as_slice();
    let everything = |_: &Object| true;
    let all = Metadata {
        selected: &everything,
        custom,
        config,
    };
    transform_level_to(level, k, resources, &all)?;
    // the `configurations` field specs: where else this level's labels and annotations go
    fn objects(resources: &mut [Res]) -> impl Iterator<Item = &mut Object> {
        resources.iter_mut().map(|r| &mut r.obj)
    }
    for label in &k.labels {
        crate::plugins::apply_maps(&config.labels, &label.pairs, objects(resources));
        let fields = crate::plugins::specs(&serde_json::json!({"fieldSpecs": label.fields}));
        crate::plugins::apply_maps(&fields, &label.pairs, objects(resources));
        if label.include_selectors {
            crate::plugins::apply_maps(&config.common_labels, &label.pairs, objects(resources));
        } else {
            if label.include_templates {
                crate::plugins::apply_maps(&config.template_labels, &label.pairs, objects(resources));
            }
            if label.include_volume_claim_templates {
                let claims = &config.volume_claim_template_labels;
                crate::plugins::apply_maps(claims, &label.pairs, objects(resources));
            }
        }
    }
    crate::plugins::apply_maps(&config.common_labels, &k.common_labels, objects(resources));
    crate::plugins::apply_maps(
        &config.common_annotations,
        &k.common_annotations,
        objects(resources),
    );
    // what ran, for `buildMetadata: [transformerAnnotations]`: the fields' builtin transformers, then each
    // configuration
    let mut ran: Vec<Origin> = match &level.configured_in {
        Some(file) => track::builtin_transformers(k)
            .into_iter()
            .map(|kind| Origin::builtin(file.clone(), kind))
            .collect(),
        None => Vec::new(),
    };
    for (plugin, at) in plugin_configs(level, &k.transformers)? {
        ran.extend(at.map(|file| Origin::config(file, &plugin)));
        let t = crate::plugins::transformer(&plugin).map_err(|message| Error::Invalid {
            path: origin.display().to_string(),
            message,
        })?;
        if let Some((specs, values)) = &t.maps {
            crate::plugins::apply_maps(specs, values, objects(resources));
            continue;
        }
        let selects = |o: &Object| t.selects(o);
        let some = Metadata {
            selected: &selects,
            custom,
            config,
        };
        transform_level_to(level, &t.kustomization, resources, &some)?;
    }
    for r in resources.iter_mut() {
        ran.iter().for_each(|o| track::transformed(&mut r.obj, o));
    }
    Ok(())
}

/// A level being built: where it reads, its kustomization file, and — when origins are tracked — that
/// file's path and its directory's from the build's directory.
struct Level<'a> {
    root: &'a Root,
    dir: &'a Path,
    file: &'a Path,
    configured_in: Option<String>,
    track: Option<String>,
    decrypt: Option<&'a dyn yaml::Decrypt>,
}

impl<'a> Level<'a> {
    /// The level of the kustomization `file` in `dir`, as `walk` stands.
    fn new(root: &'a Root, dir: &'a Path, file: &'a Path, walk: &Walk<'a>) -> Self {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        Self {
            root,
            dir,
            file,
            configured_in: walk.track.as_deref().map(|t| track::join(t, &name)),
            track: walk.track.clone(),
            decrypt: walk.decrypt,
        }
    }

    /// Its generators: the fields', then the `generators` configurations'.
    fn generate(&self, k: &Kustomization, resources: &mut Vec<Res>) -> Result<()> {
        let made_by = self.configured_in.clone().map(MadeBy::Fields);
        run_generators(self, k, resources, made_by.as_ref())?;
        run_generator_plugins(self, k, resources)
    }
}

/// Which objects a level's metadata transformers change, and the name references beyond the built-in ones.
struct Metadata<'a> {
    selected: &'a dyn Fn(&Object) -> bool,
    custom: &'a [crate::refs::CustomRef],
    /// The `configurations` met so far.
    config: &'a crate::plugins::Configuration,
}

/// The fields' patches and transformers of `k`, the metadata ones on the objects `metadata` selects.
fn transform_level_to(
    level: &Level,
    k: &Kustomization,
    resources: &mut Vec<Res>,
    metadata: &Metadata,
) -> Result<()> {
    let (root, dir, origin) = (level.root, level.dir, level.file);
    let names = |resources: &[Res]| -> Vec<String> {
        resources
            .iter()
            .map(|r| field(&r.obj, &["metadata", "name"]).to_string())
            .collect()
    };
    let before = names(resources);
    let schema = metadata.config.openapi.as_ref();
    apply_patches(level, k, resources, Phase::Before, schema)?;
    follow_patch_renames(resources, &before, metadata.custom);
    transform::apply_metadata_to(k, resources, metadata.selected, metadata.config);
    let before = names(resources);
    apply_patches(level, k, resources, Phase::Json6902, schema)?;
    follow_patch_renames(resources, &before, metadata.custom);
    let invalid = |message: String| Error::Invalid {
        path: origin.display().to_string(),
        message,
    };
    transform::apply_workloads(k, resources, metadata.config).map_err(invalid)?;
    let mut replacements = Vec::new();
    for r in &k.replacements {
        match &r.path {
            Some(p) => {
                let (_, value): (_, serde_yaml::Value) = read_yaml(root, dir, origin, p)?;
                let parsed: Vec<crate::replace::Replacement> = if value.is_sequence() {
                    serde_yaml::from_value(value)
                } else {
                    serde_yaml::from_value(value).map(|one| vec![one])
                }
                .map_err(|e| invalid(format!("{p}: {e}")))?;
                replacements.extend(parsed);
            }
            None => replacements.push(r.clone()),
        }
    }
    crate::replace::apply(&replacements, resources).map_err(invalid)
}

/// Objects a patch renamed (a JSON patch on `/metadata/name`): references to them follow, as kustomize's
/// name reference transformer follows every rename of its level. `before` holds each object's name before
/// the patches (a patch that deleted an object leaves nothing to compare: nothing follows then).
fn follow_patch_renames(resources: &mut [Res], before: &[String], custom: &[crate::refs::CustomRef]) {
    if before.len() != resources.len() {
        return;
    }
    let renames: Vec<crate::refs::Rename> = resources
        .iter()
        .zip(before)
        .filter_map(|(r, old)| {
            let (kind, new) = (field(&r.obj, &["kind"]), field(&r.obj, &["metadata", "name"]));
            (new != old && (crate::refs::referred(kind) || custom.iter().any(|c| c.referred == kind)))
                .then(|| crate::refs::Rename::of(&r.obj, old.clone(), new.to_string()))
        })
        .collect();
    if !renames.is_empty() {
        crate::refs::apply(resources, &renames, custom);
    }
}

/// A Component: its resources join those accumulated so far, then its own components and transformers
/// apply to all of them.
fn load_component(root: &Root, dir: &Path, walk: &mut Walk, accumulated: &mut Vec<Res>) -> Result<()> {
    let file = kustomization_file(dir)?.ok_or_else(|| Error::Invalid {
        path: dir.display().to_string(),
        message: "a component directory needs a kustomization file of kind Component".into(),
    })?;
    let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
        path: file.display().to_string(),
        source,
    })?;
    let k = Kustomization::parse(&text, &file.display().to_string())?;
    if k.kind.as_deref() != Some("Component") {
        return Err(Error::Invalid {
            path: file.display().to_string(),
            message: "expected kind Component for a component".into(),
        });
    }
    if walk.dirs.contains(&dir.to_path_buf()) {
        return Err(Error::Invalid {
            path: dir.display().to_string(),
            message: "cycle detected through components".into(),
        });
    }
    walk.dirs.push(dir.to_path_buf());
    walk.vars.extend(k.vars.iter().cloned());
    for entry in k.resources.iter().chain(&k.bases) {
        let target = root.dir(&dir.join(entry), &file)?;
        if target.is_file() {
            root.own(dir, &target, &file)?;
        }
        accumulated.extend(load_tracked(root, &target, entry, walk)?);
    }
    let level = Level::new(root, dir, &file, walk);
    level.generate(&k, accumulated)?;
    for entry in &k.components {
        let target = root.dir(&dir.join(entry), &file)?;
        load_component_tracked(root, &target, entry, walk, accumulated)?;
    }
    walk.dirs.pop();
    transform_level(&level, &k, accumulated, &walk.config)?;
    crate::vars::bind(&k.vars, accumulated).map_err(|message| Error::Invalid {
        path: file.display().to_string(),
        message,
    })
}

/// A `resources` entry: a nested kustomization directory, or a file of objects.
fn load_resource(root: &Root, target: &Path, walk: &mut Walk<'_>) -> Result<Vec<Res>> {
    if target.is_dir() {
        load_dir(root, target, walk, false)
    } else {
        load_file(target, walk.decrypt)
    }
}

fn load_file(file: &Path, decrypt: Option<&dyn yaml::Decrypt>) -> Result<Vec<Res>> {
    let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
        path: file.display().to_string(),
        source,
    })?;
    let objects = yaml::parse_stream_with(&text, &file.display().to_string(), decrypt)?;
    objects
        .into_iter()
        .map(|obj| {
            if !obj.get("metadata").is_none_or(|m| m.is_object()) {
                return Err(Error::Invalid {
                    path: file.display().to_string(),
                    message: "metadata must be a mapping".into(),
                });
            }
            if field(&obj, &["kind"]).is_empty() || field(&obj, &["apiVersion"]).is_empty() {
                return Err(Error::Invalid {
                    path: file.display().to_string(),
                    message: "a resource is missing apiVersion or kind".into(),
                });
            }
            let original_name = field(&obj, &["metadata", "name"]).to_string();
            let mut obj = obj;
            stringify_metadata(&mut obj);
            let original_namespace = field(&obj, &["metadata", "namespace"]).to_string();
            Ok(Res {
                obj,
                original_name,
                original_namespace,
                previous_names: Vec::new(),
                hashed: false,
                vars: Vec::new(),
            })
        })
        .collect()
}

/// Labels and annotations are strings to kustomize: a number or boolean written there (`port: 8080`)
/// comes out as the string it spells.
fn stringify_metadata(obj: &mut Object) {
    for key in ["labels", "annotations"] {
        let Some(map) = obj
            .get_mut("metadata")
            .and_then(|m| m.get_mut(key))
            .and_then(Object::as_object_mut)
        else {
            continue;
        };
        for v in map.values_mut() {
            if v.is_number() || v.is_boolean() {
                *v = Object::String(v.to_string());
            }
        }
    }
}

/// kustomize refuses two resources with the same group, kind, namespace and name.
fn check_unique(resources: &[Res], origin: &Path) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for r in resources {
        let id = (
            field(&r.obj, &["apiVersion"])
                .split('/')
                .rev()
                .nth(1)
                .unwrap_or("")
                .to_string(),
            field(&r.obj, &["kind"]).to_string(),
            field(&r.obj, &["metadata", "namespace"]).to_string(),
            field(&r.obj, &["metadata", "name"]).to_string(),
        );
        if !seen.insert(id.clone()) {
            return Err(Error::Invalid {
                path: origin.display().to_string(),
                message: format!(
                    "may not add resource with an already registered id: {}/{} {}",
                    id.1, id.3, id.2
                ),
            });
        }
    }
    Ok(())
}

/// The kustomization Flux generates for a directory without one, as YAML (every YAML file under `dir`,
/// directories with their own kustomization included as such).
pub fn generated_kustomization(dir: &Path) -> Result<String> {
    let k = generated(dir)?;
    let mut out =
        String::from("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n");
    for r in &k.resources {
        out.push_str(&format!("- {r}\n"));
    }
    Ok(out)
}

/// Flux's generated kustomization: every YAML file under `dir` (directories with their own
/// kustomization included as such), sorted.
fn generated(dir: &Path) -> Result<Kustomization> {
    let mut resources = Vec::new();
    collect(dir, dir, &mut resources)?;
    resources.sort();
    Ok(Kustomization {
        resources,
        ..Default::default()
    })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("under the root")
            .display()
            .to_string();
        if path.is_dir() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if kustomization_file(&path)?.is_some() {
                out.push(rel);
            } else {
                collect(root, &path, out)?;
            }
        } else if rel.ends_with(".yaml") || rel.ends_with(".yml") {
            out.push(rel);
        }
    }
    Ok(())
}

#[derive(PartialEq)]
enum Phase {
    /// `patchesStrategicMerge` and `patches`, before the other transformers.
    Before,
    /// `patchesJson6902`, after labels and annotations.
    Json6902,
}

/// The text of a patch entry: inline, or read from its file (inside the root).
fn patch_text(root: &Root, dir: &Path, origin: &Path, entry: &PatchEntry) -> Result<String> {
    match (&entry.patch, &entry.path) {
        (Some(text), _) => Ok(text.clone()),
        (None, Some(path)) => {
            let file = root.file(dir, &dir.join(path), origin)?;
            std::fs::read_to_string(&file).map_err(|source| Error::Io {
                path: file.display().to_string(),
                source,
            })
        }
        (None, None) => Err(Error::Invalid {
            path: origin.display().to_string(),
            message: "a patch needs 'patch' or 'path'".into(),
        }),
    }
}

fn apply_patches(
    level: &Level,
    k: &Kustomization,
    resources: &mut Vec<Res>,
    phase: Phase,
    schema: Option<&crate::patch::Schema>,
) -> Result<()> {
    let (root, dir, origin, decrypt) = (level.root, level.dir, level.file, level.decrypt);
    let invalid = |message: String| Error::Invalid {
        path: origin.display().to_string(),
        message,
    };
    if phase == Phase::Json6902 {
        for entry in &k.patches_json6902 {
            let target = entry
                .target
                .clone()
                .ok_or_else(|| invalid("a patchesJson6902 entry needs a target".into()))?;
            let text = patch_text(root, dir, origin, entry)?;
            let ops: Vec<Object> = parse_ops(&text)
                .ok_or_else(|| invalid("patchesJson6902 must be a list of operations".into()))?;
            for r in resources.iter_mut().filter(|r| target.selects(&r.obj, r.names())) {
                crate::patch::json6902(&mut r.obj, &ops)
                    .map_err(|e| invalid(format!("unable to apply JSON patch: {}", e.0)))?;
            }
        }
        return Ok(());
    }
    let mut entries: Vec<PatchEntry> = k
        .patches_strategic_merge
        .iter()
        .map(|p| {
            // an entry is a file when it names one, inline YAML otherwise
            if !p.contains('\n') && dir.join(p).is_file() {
                PatchEntry {
                    path: Some(p.clone()),
                    ..Default::default()
                }
            } else {
                PatchEntry {
                    patch: Some(p.clone()),
                    ..Default::default()
                }
            }
        })
        .collect();
    entries.extend(k.patches.iter().cloned());
    for entry in &entries {
        let text = patch_text(root, dir, origin, entry)?;
        if let Some(ops) = parse_ops(&text) {
            let target = entry
                .target
                .clone()
                .ok_or_else(|| invalid("a JSON 6902 patch needs a target".into()))?;
            for r in resources.iter_mut().filter(|r| target.selects(&r.obj, r.names())) {
                crate::patch::json6902(&mut r.obj, &ops)
                    .map_err(|e| invalid(format!("unable to apply JSON patch: {}", e.0)))?;
            }
            continue;
        }
        for patch in yaml::parse_stream_with(&text, &origin.display().to_string(), decrypt)? {
            let matched: Vec<usize> = match &entry.target {
                Some(t) => (0..resources.len())
                    .filter(|i| t.selects(&resources[*i].obj, resources[*i].names()))
                    .collect(),
                None => {
                    let same = |r: &Res| {
                        field(&r.obj, &["kind"]) == field(&patch, &["kind"])
                            && r.known_as(field(&patch, &["metadata", "name"]))
                            && (field(&patch, &["metadata", "namespace"]).is_empty()
                                || field(&r.obj, &["metadata", "namespace"])
                                    == field(&patch, &["metadata", "namespace"]))
                    };
                    let found: Vec<usize> = (0..resources.len()).filter(|i| same(&resources[*i])).collect();
                    if found.is_empty() {
                        return Err(invalid(format!(
                            "no resource matches strategic merge patch \"{}\" {}",
                            field(&patch, &["kind"]),
                            field(&patch, &["metadata", "name"])
                        )));
                    }
                    found
                }
            };
            if field(&patch, &["$patch"]) == "delete" {
                // a whole-object delete directive removes what it matches
                let mut i = 0;
                resources.retain(|_| {
                    i += 1;
                    !matched.contains(&(i - 1))
                });
                continue;
            }
            for i in matched {
                let allowed = |opt: &str| {
                    entry
                        .options
                        .as_ref()
                        .and_then(|o| o.get(opt))
                        .copied()
                        .unwrap_or(false)
                };
                let keep_name = !allowed("allowNameChange");
                let keep_kind = !allowed("allowKindChange");
                let (name, kind, namespace, api_version) = (
                    field(&resources[i].obj, &["metadata", "name"]).to_string(),
                    field(&resources[i].obj, &["kind"]).to_string(),
                    field(&resources[i].obj, &["metadata", "namespace"]).to_string(),
                    field(&resources[i].obj, &["apiVersion"]).to_string(),
                );
                crate::patch::strategic_merge_with(&mut resources[i].obj, &patch, schema);
                // a patch does not rename, re-kind or move what it patches (kustomize's ApplySmPatch):
                // its name may be the original one, before a base's prefix; it takes the target's
                // apiVersion (kustomize sets the patch's GVK to the target's before merging)
                if let Some(meta) = resources[i]
                    .obj
                    .get_mut("metadata")
                    .and_then(|m| m.as_object_mut())
                {
                    if keep_name {
                        meta.insert("name".into(), Object::String(name));
                    }
                    if namespace.is_empty() {
                        meta.remove("namespace");
                    } else {
                        meta.insert("namespace".into(), Object::String(namespace));
                    }
                }
                if let Some(map) = resources[i].obj.as_object_mut() {
                    map.insert("apiVersion".into(), Object::String(api_version));
                    if keep_kind {
                        map.insert("kind".into(), Object::String(kind));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The operations of a JSON 6902 patch, when `text` is a YAML/JSON list.
fn parse_ops(text: &str) -> Option<Vec<Object>> {
    let value: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    let json: Object = serde_json::to_value(value).ok()?;
    json.as_array().cloned()
}

/// A `configurations` file.
/// The file `entry` names (confined as the root says) and its YAML.
fn read_yaml<T: serde::de::DeserializeOwned>(
    root: &Root,
    dir: &Path,
    origin: &Path,
    entry: &str,
) -> Result<(PathBuf, T)> {
    let file = root.file(dir, &dir.join(entry), origin)?;
    let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
        path: file.display().to_string(),
        source,
    })?;
    let value = serde_yaml::from_str(&text).map_err(|e| Error::Yaml {
        path: file.display().to_string(),
        message: e.to_string(),
    })?;
    Ok((file, value))
}

fn configuration(
    root: &Root,
    dir: &Path,
    origin: &Path,
    entry: &str,
) -> Result<crate::plugins::Configuration> {
    let (file, doc): (_, serde_json::Value) = read_yaml(root, dir, origin, entry)?;
    crate::plugins::configuration(&doc).map_err(|message| Error::Invalid {
        path: file.display().to_string(),
        message,
    })
}

/// A kustomization's `openapi`: a custom schema file (`path`, JSON or YAML), or kustomize's builtin schema
/// of a Kubernetes `version` (nothing to load: our merge keys are Kubernetes' own); not both.
fn openapi_schema(
    root: &Root,
    dir: &Path,
    origin: &Path,
    k: &Kustomization,
) -> Result<Option<crate::patch::Schema>> {
    let invalid = |message: String| Error::Invalid {
        path: origin.display().to_string(),
        message,
    };
    let Some(path) = k.openapi.get("path") else {
        return Ok(None);
    };
    if k.openapi.contains_key("version") {
        return Err(invalid(
            "builtin version and custom schema provided, cannot use both".into(),
        ));
    }
    let (_, doc): (_, serde_json::Value) = read_yaml(root, dir, origin, path)?;
    crate::patch::Schema::parse(&doc)
        .map(Some)
        .map_err(|message| invalid(format!("{path}: {message}")))
}

/// `crds` lists OpenAPI definition files (a map of definition name → schema), as kustomize reads them;
/// the name references their properties declare.
fn openapi_definitions(
    root: &Root,
    dir: &Path,
    origin: &Path,
    entry: &str,
) -> Result<Vec<crate::refs::CustomRef>> {
    let (file, value): (_, serde_yaml::Value) = read_yaml(root, dir, origin, entry)?;
    let valid = value
        .as_mapping()
        .is_some_and(|m| m.values().all(|v| v.is_mapping()));
    if !valid {
        return Err(Error::Invalid {
            path: origin.display().to_string(),
            message: format!("loading CRDs [{entry}]: unable to parse open API definition from '{entry}'"),
        });
    }
    let json: serde_json::Value = serde_json::to_value(&value).map_err(|e| Error::Yaml {
        path: file.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(crate::refs::declared(&json))
}
