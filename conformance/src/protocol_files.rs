//! Where the `virtwire` command finds libvirt's `.x` protocol files, and what it tells a user who
//! has none. The protocol crate only loads a directory it is given (`Schema::load_dir`); finding
//! one on disk is the application's job (DESIGN.md, "The house rules").
//!
//! The places, in order ([`Search::standard`]):
//!
//! 1. `--protocol-dir DIR`;
//! 2. `--libvirt-version V`: `libvirt-V/` (or the newest `libvirt-V.*/`, so `11.3` finds
//!    `libvirt-11.3.0`) in the user cache, else in a checkout's `.cache` — an error when absent;
//! 3. `$VIRTWIRE_PROTOCOL_DIR` (an empty value counts as unset);
//! 3. the user's cache: `$XDG_CACHE_HOME/virtwire/libvirt-<version>/`, else
//!    `~/.cache/virtwire/libvirt-<version>/` — the newest version there;
//! 4. a virtwire checkout's `.cache/libvirt-<version>/` (the newest; what `scripts/setup.sh
//!    --xdr-only` fetches): the checkout above the executable (`target/debug/virtwire`), else the
//!    one this binary was built from, so that `cargo run` in a checkout finds it.
//!
//! The first three are the user's choice: used as given, and an error when they do not load. The
//! others are searched: a directory counts when it holds `src/remote/remote_protocol.x`.
//!
//! [`fetch`] gets a release's files (`virtwire fetch-protocol`): the upstream tarball from Debian's
//! archive, checked against the SHA-256 pinned in [`KNOWN_RELEASES`] (the value Debian's signed
//! `Sources` index gives), unpacked into `<cache>/libvirt-<version>/`.

use std::fmt;
use std::path::{Path, PathBuf};

use virtwire_protocol::schema::{Schema, SchemaError};

/// The environment variable that names a libvirt source tree.
pub const PROTOCOL_DIR_ENV: &str = "VIRTWIRE_PROTOCOL_DIR";

/// The file whose presence makes a searched directory a candidate.
const MARKER: &str = "src/remote/remote_protocol.x";

/// How to get the files: said once, in [`LoadError`]'s message.
pub const HOW_TO_GET_THEM: &str = "fetch them with `virtwire fetch-protocol [VERSION]` (into \
    ~/.cache/virtwire) or scripts/setup.sh --xdr-only in a virtwire checkout, or name a libvirt \
    source tree with --protocol-dir DIR or VIRTWIRE_PROTOCOL_DIR";

/// Where a directory came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// `--protocol-dir`.
    Flag,
    /// `--libvirt-version`, found in a cache.
    Version,
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
            Source::Version => "--libvirt-version",
            Source::Env => "$VIRTWIRE_PROTOCOL_DIR",
            Source::UserCache => "the user cache",
            Source::Repository => "the repository's .cache",
        }
    }

    /// True for the places a user names (flag, environment): they must load.
    pub fn is_explicit(self) -> bool {
        matches!(self, Source::Flag | Source::Version | Source::Env)
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
    /// `--libvirt-version`, if given (`11.3.0`, `11.3`).
    pub version: Option<String>,
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
            version: None,
            env: var(PROTOCOL_DIR_ENV).map(PathBuf::from),
            user_caches: user_cache.into_iter().collect(),
            repo_caches,
        }
    }

    /// The same search for `--libvirt-version V` (`None`, or an empty string: the newest present).
    pub fn with_version(mut self, version: Option<&str>) -> Search {
        self.version = version.filter(|v| !v.is_empty()).map(str::to_string);
        self
    }

    /// Every `libvirt-<version>/` holding the files in the caches searched (user cache first;
    /// a version in both is listed once, from the first), oldest version first.
    pub fn available(&self) -> Vec<(String, PathBuf)> {
        let mut out: Vec<(Vec<u64>, String, PathBuf)> = Vec::new();
        for root in self.user_caches.iter().chain(&self.repo_caches) {
            for (key, name, path) in versions_in(root) {
                if !out.iter().any(|(_, n, _)| *n == name) {
                    out.push((key, name, path));
                }
            }
        }
        out.sort();
        out.into_iter().map(|(_, n, p)| (n, p)).collect()
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
        if let Some(v) = &self.version {
            let want: Vec<u64> = version_key(v);
            let matches = |name: &str| {
                let k = version_key(name);
                name == v || (k.len() > want.len() && k.starts_with(&want))
            };
            for roots in [&self.user_caches, &self.repo_caches] {
                let best = roots
                    .iter()
                    .flat_map(|r| versions_in(r))
                    .filter(|(_, name, _)| matches(name))
                    .max();
                if let Some((_, _, dir)) = best {
                    return Ok(Found {
                        dir,
                        source: Source::Version,
                    });
                }
            }
            return Err(LoadError::VersionNotFound {
                version: v.clone(),
                searched: self
                    .user_caches
                    .iter()
                    .chain(&self.repo_caches)
                    .map(|r| r.join(format!("libvirt-{v}")))
                    .collect(),
                available: self.available().into_iter().map(|(n, _)| n).collect(),
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

/// A version's numeric parts for ordering (`11.3.0` → [11, 3, 0]; a part that is not a number
/// counts as 0).
fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// (ordering key, version, dir) of every `root/libvirt-<version>/` that holds the files.
fn versions_in(root: &Path) -> Vec<(Vec<u64>, String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix("libvirt-")?.to_string();
            let path = e.path();
            path.join(MARKER)
                .is_file()
                .then(|| (version_key(&version), version, path))
        })
        .collect()
}

/// The newest `root/libvirt-<version>/` that holds the files (versions compared numerically).
fn newest_version(root: &Path) -> Option<PathBuf> {
    versions_in(root).into_iter().max().map(|(_, _, p)| p)
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
    /// `--libvirt-version V` names a version no cache holds.
    VersionNotFound {
        /// The version asked for.
        version: String,
        /// Where it was looked for.
        searched: Vec<PathBuf>,
        /// The versions that are there.
        available: Vec<String>,
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
        match self {
            LoadError::Load { found, .. } => found.source.is_explicit(),
            LoadError::VersionNotFound { .. } => true,
            LoadError::NotFound { .. } => false,
        }
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
            LoadError::VersionNotFound {
                version,
                searched,
                available,
            } => {
                write!(
                    f,
                    "no protocol (.x) files of libvirt {version} (nothing in "
                )?;
                for (i, s) in searched.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{}", s.display())?;
                }
                if available.is_empty() {
                    write!(f, "; no version is there")?;
                } else {
                    write!(f, "; present: {}", available.join(", "))?;
                }
                let known = KNOWN_RELEASES.iter().any(|r| r.version == version);
                if known {
                    write!(f, "); fetch them with `virtwire fetch-protocol {version}`")
                } else {
                    write!(
                        f,
                        "); `virtwire fetch-protocol` knows {}; for another version name its \
                         libvirt source tree (a release tarball or a git checkout) with \
                         --protocol-dir DIR",
                        KNOWN_RELEASES
                            .iter()
                            .map(|r| r.version)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
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
            LoadError::NotFound { .. } | LoadError::VersionNotFound { .. } => None,
        }
    }
}

/// A libvirt release whose `.x` files [`fetch`] can get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Release {
    /// `9.0.0`.
    pub version: &'static str,
    /// Where the upstream tarball is (Debian's archive keeps it as the `orig` tarball).
    pub url: &'static str,
    /// Its SHA-256, as Debian's signed `Sources` index lists it.
    pub sha256: &'static str,
    /// Which Debian suite ships it.
    pub suite: &'static str,
}

/// The releases `virtwire fetch-protocol` knows, oldest first: bookworm's and bookworm-backports'.
pub const KNOWN_RELEASES: &[Release] = &[
    Release {
        version: "9.0.0",
        url: "http://deb.debian.org/debian/pool/main/libv/libvirt/libvirt_9.0.0.orig.tar.xz",
        sha256: "deca5cff1b7baac297bca9663907c61f71a47183371dc7ac019c107806d5435a",
        suite: "bookworm",
    },
    Release {
        version: "11.3.0",
        url: "http://deb.debian.org/debian/pool/main/libv/libvirt/libvirt_11.3.0.orig.tar.xz",
        sha256: "6bcb0c42c4580436fea262ced56f68a6afe20f7390b1bea2116718cc034a0283",
        suite: "bookworm-backports",
    },
];

/// The user cache `fetch` writes to: `$XDG_CACHE_HOME/virtwire`, else `~/.cache/virtwire`.
pub fn user_cache() -> Option<PathBuf> {
    Search::standard(None).user_caches.into_iter().next()
}

/// Why [`fetch`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Not a release [`KNOWN_RELEASES`] lists: the version asked for, the known ones.
    #[error(
        "unknown release {0:?} (known: {1}); for another version name its libvirt source tree \
         (a release tarball or a git checkout) with --protocol-dir DIR"
    )]
    UnknownVersion(String, String),
    /// A tool (curl, tar, sha256sum) failed or is missing.
    #[error("{0}")]
    Tool(String),
    /// The download is not the pinned tarball.
    #[error("checksum mismatch for {url}: SHA-256 {got}, expected {want} (nothing was unpacked)")]
    Checksum {
        /// What was downloaded.
        url: String,
        /// Its SHA-256.
        got: String,
        /// The pinned one.
        want: String,
    },
    /// Writing the cache failed.
    #[error("{path}: {error}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        error: std::io::Error,
    },
}

/// Look a release up by version (`11.3.0`, or a prefix such as `11.3`).
pub fn release(version: &str) -> Result<&'static Release, FetchError> {
    let want = version_key(version);
    KNOWN_RELEASES
        .iter()
        .rev()
        .find(|r| r.version == version || version_key(r.version).starts_with(&want))
        .ok_or_else(|| {
            let known: Vec<&str> = KNOWN_RELEASES.iter().map(|r| r.version).collect();
            FetchError::UnknownVersion(version.to_string(), known.join(", "))
        })
}

fn run_tool(cmd: &mut std::process::Command, what: &str) -> Result<Vec<u8>, FetchError> {
    let out = cmd.output().map_err(|e| {
        FetchError::Tool(format!("{what}: cannot run {:?}: {e}", cmd.get_program()))
    })?;
    if !out.status.success() {
        return Err(FetchError::Tool(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// Fetch `release`'s `.x` files into `cache/libvirt-<version>/` (a pruned copy of the source tree)
/// and return that directory. Already there: returned as is. The tarball is downloaded with curl
/// (at most 10 minutes), checked against the pinned SHA-256 before anything is unpacked, and
/// unpacked with tar into a temporary directory that is renamed into place.
pub fn fetch(release: &Release, cache: &Path) -> Result<PathBuf, FetchError> {
    use std::process::Command;
    let dest = cache.join(format!("libvirt-{}", release.version));
    if dest.join(MARKER).is_file() {
        return Ok(dest);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| FetchError::Io { path, error }
    };
    std::fs::create_dir_all(cache).map_err(io(cache))?;
    let tmp = cache.join(format!(".fetch-{}-{}", release.version, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let result = (|| {
        let tarball = tmp.join(format!("libvirt_{}.orig.tar.xz", release.version));
        run_tool(
            Command::new("curl")
                .args([
                    "-fsSL",
                    "--retry",
                    "2",
                    "--connect-timeout",
                    "30",
                    "--max-time",
                    "600",
                ])
                .arg("-o")
                .arg(&tarball)
                .arg(release.url),
            &format!("downloading {}", release.url),
        )?;
        let sum = run_tool(Command::new("sha256sum").arg(&tarball), "sha256sum")?;
        let got = String::from_utf8_lossy(&sum)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        if got != release.sha256 {
            return Err(FetchError::Checksum {
                url: release.url.to_string(),
                got,
                want: release.sha256.to_string(),
            });
        }
        run_tool(
            Command::new("tar")
                .arg("-xf")
                .arg(&tarball)
                .arg("-C")
                .arg(&tmp)
                .args(["--wildcards", "*.x"]),
            "unpacking the .x files",
        )?;
        let src = tmp.join(format!("libvirt-{}", release.version));
        if !src.join(MARKER).is_file() {
            return Err(FetchError::Tool(format!(
                "the tarball has no libvirt-{}/{MARKER}",
                release.version
            )));
        }
        std::fs::rename(&src, &dest).map_err(io(&dest))?;
        Ok(dest.clone())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
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
