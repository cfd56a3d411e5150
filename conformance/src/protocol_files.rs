//! Where the `virtwire` command finds libvirt's `.x` protocol files, and what it tells a user who
//! has none. The protocol crate only loads a directory it is given (`Schema::load_dir`); finding
//! one on disk is the application's job (DESIGN.md, "The house rules").
//!
//! The places, in order ([`Search::standard`]):
//!
//! 1. `--protocol-dir DIR`;
//! 2. `$VIRTWIRE_PROTOCOL_DIR` (an empty value counts as unset);
//! 3. the user's cache: `$XDG_CACHE_HOME/virtwire/libvirt-<version>/`, else
//!    `~/.cache/virtwire/libvirt-<version>/` — the newest version there;
//! 4. a virtwire checkout's `.cache/libvirt-<version>/` (the newest; what `scripts/setup.sh
//!    --xdr-only` fetches): the checkout above the executable (`target/debug/virtwire`), else the
//!    one this binary was built from, so that `cargo run` in a checkout finds it.
//!
//! The first two are the user's choice: used as given, and an error when they do not load. The
//! others are searched: a directory counts when it holds `src/remote/remote_protocol.x`.

use std::fmt;
use std::path::{Path, PathBuf};

use virtwire_protocol::schema::{Schema, SchemaError};

/// The environment variable that names a libvirt source tree.
pub const PROTOCOL_DIR_ENV: &str = "VIRTWIRE_PROTOCOL_DIR";

/// The file whose presence makes a searched directory a candidate.
const MARKER: &str = "src/remote/remote_protocol.x";

/// How to get the files: said once, in [`LoadError`]'s message.
pub const HOW_TO_GET_THEM: &str = "fetch them with scripts/setup.sh --xdr-only in a virtwire \
    checkout (VIRTWIRE_CACHE=~/.cache/virtwire puts them in your user cache), or name a libvirt \
    source tree with --protocol-dir DIR or VIRTWIRE_PROTOCOL_DIR";

/// Where a directory came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// `--protocol-dir`.
    Flag,
    /// `$VIRTWIRE_PROTOCOL_DIR`.
    Env,
    /// The user's cache (`$XDG_CACHE_HOME/virtwire` or `~/.cache/virtwire`).
    UserCache,
    /// A virtwire checkout's `.cache`.
    Repository,
}

impl Source {
    /// As shown in messages: `--protocol-dir`, `$VIRTWIRE_PROTOCOL_DIR`, `the user cache`,
    /// `the repository's .cache`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Flag => "--protocol-dir",
            Source::Env => "$VIRTWIRE_PROTOCOL_DIR",
            Source::UserCache => "the user cache",
            Source::Repository => "the repository's .cache",
        }
    }

    /// True for the places a user names (flag, environment): they must load.
    pub fn is_explicit(self) -> bool {
        matches!(self, Source::Flag | Source::Env)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A directory to load the schema from, and why it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The libvirt source tree (or pruned copy).
    pub dir: PathBuf,
    /// Where it came from.
    pub source: Source,
}

/// The places to look, in order. [`Search::standard`] fills them from the command line and the
/// process environment; tests build their own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Search {
    /// `--protocol-dir`, if given.
    pub flag: Option<PathBuf>,
    /// `$VIRTWIRE_PROTOCOL_DIR`, if set and not empty.
    pub env: Option<PathBuf>,
    /// Directories holding `libvirt-<version>/` trees in the user's cache.
    pub user_caches: Vec<PathBuf>,
    /// Checkouts' `.cache` directories holding `libvirt-<version>/` trees.
    pub repo_caches: Vec<PathBuf>,
}

impl Search {
    /// The standard search: `flag`, then the environment, the user's cache and the checkouts (see
    /// the module docs). An empty `flag` counts as absent.
    pub fn standard(flag: Option<&Path>) -> Search {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        // The XDG base directory spec ignores a relative $XDG_CACHE_HOME.
        let user_cache = var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|c| c.join("virtwire"));
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf));
        let mut repo_caches: Vec<PathBuf> = exe_dir
            .iter()
            .flat_map(|d| d.ancestors())
            .filter(|d| is_checkout(d))
            .map(|d| d.join(".cache"))
            .collect();
        // The checkout this binary was built from (conformance/ is one level below its root).
        let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        if is_checkout(&built_in) {
            let cache = built_in.join(".cache");
            if !repo_caches.iter().any(|c| same_dir(c, &cache)) {
                repo_caches.push(cache);
            }
        }
        Search {
            flag: flag
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf),
            env: var(PROTOCOL_DIR_ENV).map(PathBuf::from),
            user_caches: user_cache.into_iter().collect(),
            repo_caches,
        }
    }

    /// The first place that applies: the flag or the environment as given, else the newest
    /// `libvirt-<version>/` holding the files in a user cache, else in a checkout.
    pub fn locate(&self) -> Result<Found, LoadError> {
        if let Some(dir) = &self.flag {
            return Ok(Found {
                dir: dir.clone(),
                source: Source::Flag,
            });
        }
        if let Some(dir) = &self.env {
            return Ok(Found {
                dir: dir.clone(),
                source: Source::Env,
            });
        }
        for (roots, source) in [
            (&self.user_caches, Source::UserCache),
            (&self.repo_caches, Source::Repository),
        ] {
            if let Some(dir) = roots.iter().find_map(|r| newest_version(r)) {
                return Ok(Found { dir, source });
            }
        }
        Err(LoadError::NotFound {
            searched: self
                .user_caches
                .iter()
                .chain(&self.repo_caches)
                .map(|r| r.join("libvirt-*"))
                .collect(),
        })
    }

    /// [`Search::locate`], then load the schema from there.
    pub fn load(&self) -> Result<(Schema, Found), LoadError> {
        let found = self.locate()?;
        match Schema::load_dir(&found.dir) {
            Ok(s) => Ok((s, found)),
            Err(error) => Err(LoadError::Load { found, error }),
        }
    }
}

/// True when `dir` looks like a virtwire checkout: a workspace with a `.cache` beside `protocol/`.
fn is_checkout(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file() && dir.join("protocol").is_dir() && dir.join(".cache").is_dir()
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The newest `root/libvirt-<version>/` that holds the files (versions compared numerically).
fn newest_version(root: &Path) -> Option<PathBuf> {
    let rd = std::fs::read_dir(root).ok()?;
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version: Vec<u64> = name
                .strip_prefix("libvirt-")?
                .split('.')
                .map(|p| p.parse().unwrap_or(0))
                .collect();
            let path = e.path();
            path.join(MARKER).is_file().then_some((version, path))
        })
        .max()
        .map(|(_, p)| p)
}

/// Why there is no schema.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// No flag, no environment variable, and no files where the search looked.
    NotFound {
        /// The patterns searched (`…/virtwire/libvirt-*`, `…/.cache/libvirt-*`).
        searched: Vec<PathBuf>,
    },
    /// A directory was chosen but does not load.
    Load {
        /// Which, and why it was chosen.
        found: Found,
        /// What is wrong with it.
        error: SchemaError,
    },
}

impl LoadError {
    /// True when the user named the directory (flag or environment): running on without the schema
    /// would hide their mistake.
    pub fn is_fatal(&self) -> bool {
        matches!(self, LoadError::Load { found, .. } if found.source.is_explicit())
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotFound { searched } => {
                write!(
                    f,
                    "no libvirt protocol (.x) files found (no --protocol-dir, ${PROTOCOL_DIR_ENV} \
                     unset"
                )?;
                for s in searched {
                    write!(f, ", nothing in {}", s.display())?;
                }
                write!(f, "); {HOW_TO_GET_THEM}")
            }
            LoadError::Load { found, error } => {
                write!(
                    f,
                    "cannot load the protocol files from {} ({}): {error}",
                    found.dir.display(),
                    found.source
                )?;
                if !found.source.is_explicit() {
                    write!(f, "; {HOW_TO_GET_THEM}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Load { error, .. } => Some(error),
            LoadError::NotFound { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "virtwire-protocol-files-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A `root/libvirt-<v>/` holding the marker file only.
    fn fake_tree(root: &Path, version: &str) -> PathBuf {
        let d = root.join(format!("libvirt-{version}"));
        std::fs::create_dir_all(d.join("src/remote")).unwrap();
        std::fs::write(d.join(MARKER), "").unwrap();
        d
    }

    #[test]
    fn flag_then_env_are_taken_as_given() {
        let d = tmp("given");
        let s = Search {
            flag: Some(d.join("nowhere")),
            env: Some(d.clone()),
            ..Search::default()
        };
        assert_eq!(
            s.locate().unwrap(),
            Found {
                dir: d.join("nowhere"),
                source: Source::Flag
            }
        );
        let s = Search { flag: None, ..s };
        assert_eq!(s.locate().unwrap().source, Source::Env);
        // A directory the user named that does not load is fatal, and says what is missing where.
        let e = s.load().unwrap_err();
        assert!(e.is_fatal());
        let msg = e.to_string();
        assert!(
            msg.starts_with("cannot load the protocol files from"),
            "{msg}"
        );
        assert!(msg.contains("remote_protocol.x"), "{msg}");
        assert!(msg.contains("$VIRTWIRE_PROTOCOL_DIR"), "{msg}");
        assert!(
            !msg.contains("setup.sh"),
            "no hint for a named directory: {msg}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn user_cache_before_repository_newest_version_first() {
        let user = tmp("user");
        let repo = tmp("repo");
        fake_tree(&repo, "9.0.0");
        let s = Search {
            user_caches: vec![user.clone()],
            repo_caches: vec![repo.clone()],
            ..Search::default()
        };
        assert_eq!(
            s.locate().unwrap(),
            Found {
                dir: repo.join("libvirt-9.0.0"),
                source: Source::Repository
            }
        );
        fake_tree(&user, "8.10.0");
        fake_tree(&user, "9.2.0");
        std::fs::create_dir_all(user.join("libvirt-10.0.0")).unwrap(); // no files: skipped
        assert_eq!(
            s.locate().unwrap(),
            Found {
                dir: user.join("libvirt-9.2.0"),
                source: Source::UserCache
            }
        );
        // A searched directory that does not load is a warning, with the way to get the files.
        let e = s.load().unwrap_err();
        assert!(!e.is_fatal());
        assert!(e.to_string().contains("the user cache"), "{e}");
        assert!(e.to_string().contains(HOW_TO_GET_THEM), "{e}");
        std::fs::remove_dir_all(&user).unwrap();
        std::fs::remove_dir_all(&repo).unwrap();
    }

    #[test]
    fn nothing_found_says_where_it_looked_and_how_to_get_the_files_once() {
        let empty = tmp("empty");
        let s = Search {
            user_caches: vec![empty.join("virtwire")],
            repo_caches: vec![empty.join(".cache")],
            ..Search::default()
        };
        let e = s.load().unwrap_err();
        assert!(!e.is_fatal());
        let msg = e.to_string();
        for part in [
            "no libvirt protocol (.x) files found",
            "virtwire/libvirt-*",
            ".cache/libvirt-*",
            "scripts/setup.sh --xdr-only",
            "--protocol-dir",
            "VIRTWIRE_PROTOCOL_DIR",
        ] {
            assert!(msg.contains(part), "{part}: {msg}");
        }
        assert_eq!(msg.matches("setup.sh").count(), 1, "{msg}");
        std::fs::remove_dir_all(&empty).unwrap();
    }

    #[test]
    fn empty_flag_counts_as_absent() {
        let s = Search::standard(Some(Path::new("")));
        assert_eq!(s.flag, None);
    }

    /// `cargo run` in a checkout finds the repository's `.cache/libvirt-9.0.0` (what
    /// `scripts/setup.sh --xdr-only` fetches), and the schema loads from it.
    #[test]
    fn the_checkout_cache_is_found_from_the_source_tree() {
        let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache");
        if !cache.join("libvirt-9.0.0").join(MARKER).is_file() {
            assert!(
                std::env::var_os("VIRTWIRE_REQUIRE_ALL").is_none_or(|v| v != "1"),
                "VIRTWIRE_REQUIRE_ALL=1 but {} has no libvirt-9.0.0 (scripts/setup.sh --xdr-only)",
                cache.display()
            );
            eprintln!("SKIPPED: no .cache/libvirt-9.0.0 (scripts/setup.sh --xdr-only)");
            return;
        }
        let standard = Search::standard(None);
        assert!(
            standard.repo_caches.iter().any(|c| same_dir(c, &cache)),
            "{standard:?}"
        );
        let s = Search {
            repo_caches: standard.repo_caches,
            ..Search::default()
        };
        let (schema, found) = s.load().unwrap();
        assert_eq!(found.source, Source::Repository);
        assert_eq!(schema.programs().len(), 8);
    }
}
