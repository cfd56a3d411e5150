//! Case selection by pattern, and the known-failing / known-flaky lists. Lists must not rot: a
//! pattern that matches no case is an error, and a known-failing case that passes is reported.
//!
//! Patterns are globs over case IDs: `*` matches within one `/`-separated part, `**` across parts
//! (`framing/*`, `**/over-max`). `@FILE` stands for the patterns in FILE, one per line.
//!
//! A known-failing entry is `PATTERN {SIGNATURE} REASON`: the signature ([`super::signature`]) says
//! what the failure looks like, and a listed case that fails another way is not the known failure.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher};

use super::signature::Signature;

/// A list problem: what and where.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A pattern that is not a valid glob.
    #[error("{at}: bad pattern {pattern:?}: {why}")]
    BadPattern {
        /// `FILE:LINE` or `--run`/`--skip`.
        at: String,
        /// The pattern.
        pattern: String,
        /// Why.
        why: String,
    },
    /// A list file that cannot be read.
    #[error("{}: {why}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// Two cases with one ID: the runner tracks cases by ID, so the catalogue is wrong.
    #[error("two cases have the ID {id:?} (case IDs must be unique)")]
    DuplicateId {
        /// The ID.
        id: String,
    },
    /// A case needs a case that is not in the catalogue.
    #[error("case {case:?} needs {need:?}, which is not in the catalogue")]
    UnknownNeed {
        /// The case.
        case: String,
        /// What it needs.
        need: String,
    },
    /// A known-failing / known-flaky entry without a reason.
    #[error("{at}: {pattern:?} has no reason (write the pattern, then why it fails)")]
    NoReason {
        /// `FILE:LINE`.
        at: String,
        /// The pattern.
        pattern: String,
    },
    /// A known-failing entry without a signature, or with one that does not parse.
    #[error("{at}: {pattern:?}: {why}")]
    BadSignature {
        /// `FILE:LINE`.
        at: String,
        /// The pattern.
        pattern: String,
        /// What is wrong.
        why: String,
    },
    /// A pattern that matches no case: the list has rotted (a renamed or removed case).
    #[error("{at}: {pattern:?} matches no case")]
    MatchesNothing {
        /// `FILE:LINE` or the flag.
        at: String,
        /// The pattern.
        pattern: String,
    },
}

/// One pattern, with where it was written.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// The glob as written.
    pub text: String,
    /// `FILE:LINE` or the flag it came from.
    pub at: String,
    matcher: GlobMatcher,
}

impl Pattern {
    /// A pattern from `text`, written at `at`.
    pub fn new(text: &str, at: &str) -> Result<Self, ListError> {
        let glob: Glob = GlobBuilder::new(text)
            .literal_separator(true)
            .build()
            .map_err(|e| ListError::BadPattern {
                at: at.into(),
                pattern: text.into(),
                why: e.kind().to_string(),
            })?;
        Ok(Pattern {
            text: text.into(),
            at: at.into(),
            matcher: glob.compile_matcher(),
        })
    }

    /// True when the pattern matches the case ID.
    pub fn matches(&self, id: &str) -> bool {
        self.matcher.is_match(id)
    }
}

fn read(path: &Path) -> Result<String, ListError> {
    std::fs::read_to_string(path).map_err(|e| ListError::Unreadable {
        path: path.into(),
        why: e.to_string(),
    })
}

/// Patterns from flags: each argument is a pattern, or `@FILE` for a file of them (one per line,
/// `#` comments).
pub fn patterns(args: &[String], flag: &str) -> Result<Vec<Pattern>, ListError> {
    let mut out = Vec::new();
    for a in args {
        if let Some(file) = a.strip_prefix('@') {
            let path = Path::new(file);
            for (n, line) in read(path)?.lines().enumerate() {
                let text = line.split('#').next().unwrap_or("").trim();
                if !text.is_empty() {
                    out.push(Pattern::new(text, &format!("{file}:{}", n + 1))?);
                }
            }
        } else {
            out.push(Pattern::new(a, flag)?);
        }
    }
    Ok(out)
}

/// A known-failing or known-flaky entry: a pattern, the failure it expects and the reason.
#[derive(Clone, Debug)]
pub struct Known {
    /// The pattern.
    pub pattern: Pattern,
    /// What the failure looks like (required on a known-failing list; optional on a flaky one,
    /// where a failure without one is any failure).
    pub signature: Option<Signature>,
    /// Why (with evidence: an issue, a reply, a log line).
    pub reason: String,
}

/// Which list a file is: on a known-failing list every entry must carry a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// Cases expected to fail, each in the way its signature says.
    Failing,
    /// Cases whose failures are not counted (a signature, if given, is checked).
    Flaky,
}

/// Read a known-failing / known-flaky file: each line `PATTERN {SIGNATURE} REASON…` (the signature
/// optional on a flaky list); blank lines and lines starting with `#` are ignored.
pub fn known_file(path: &Path, kind: ListKind) -> Result<Vec<Known>, ListError> {
    let mut out = Vec::new();
    for (n, line) in read(path)?.lines().enumerate() {
        let at = format!("{}:{}", path.display(), n + 1);
        if let Some(k) = known_line(line, &at, kind)? {
            out.push(k);
        }
    }
    Ok(out)
}

/// One line of a known list (`None` for a blank line or a comment).
pub fn known_line(line: &str, at: &str, kind: ListKind) -> Result<Option<Known>, ListError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (pat, rest) = line
        .split_once(char::is_whitespace)
        .map(|(p, r)| (p, r.trim()))
        .unwrap_or((line, ""));
    let bad_sig = |why: String| ListError::BadSignature {
        at: at.into(),
        pattern: pat.into(),
        why,
    };
    let (signature, reason) = if rest.starts_with('{') {
        let (sig, reason) = Signature::parse_prefix(rest).map_err(bad_sig)?;
        (Some(sig), reason.trim())
    } else if kind == ListKind::Failing {
        return Err(bad_sig(
            "no signature: write the failure it expects after the pattern, e.g. \
             `{closed}`, `{signal SIGSEGV}`, `{code 39 ~ /Unable to decode/}` (docs/known-failing.md)"
                .into(),
        ));
    } else {
        (None, rest)
    };
    if reason.is_empty() {
        return Err(ListError::NoReason {
            at: at.into(),
            pattern: pat.into(),
        });
    }
    Ok(Some(Known {
        pattern: Pattern::new(pat, at)?,
        signature,
        reason: reason.into(),
    }))
}

/// Every pattern must match at least one of `ids`.
pub fn check_all_match<'p>(
    patterns: impl IntoIterator<Item = &'p Pattern>,
    ids: &[&str],
) -> Result<(), ListError> {
    for p in patterns {
        if !ids.iter().any(|id| p.matches(id)) {
            return Err(ListError::MatchesNothing {
                at: p.at.clone(),
                pattern: p.text.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_stays_in_a_part_double_star_crosses() {
        let p = Pattern::new("framing/*", "t").unwrap();
        assert!(p.matches("framing/length-below-4"));
        assert!(!p.matches("framing/a/b"));
        assert!(!p.matches("header/x"));
        let p = Pattern::new("**/over-max", "t").unwrap();
        assert!(p.matches("limits/remote/x/over-max"));
        assert!(!p.matches("limits/remote/x/at-max"));
    }

    #[test]
    fn known_file_needs_reasons_and_reports_lines() {
        let dir = std::env::temp_dir().join(format!("vw-lists-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("known");
        std::fs::write(
            &f,
            "# comment\n\nframing/x  {closed} the daemon closes\nheader/y {closed}\n",
        )
        .unwrap();
        let e = known_file(&f, ListKind::Failing).unwrap_err().to_string();
        assert!(
            e.ends_with(":4: \"header/y\" has no reason (write the pattern, then why it fails)"),
            "{e}"
        );
        std::fs::write(&f, "framing/x  the daemon closes\n").unwrap();
        let e = known_file(&f, ListKind::Failing).unwrap_err().to_string();
        assert!(e.contains(":1: \"framing/x\": no signature"), "{e}");
        let k = known_file(&f, ListKind::Flaky).unwrap();
        assert!(k[0].signature.is_none());
        std::fs::write(&f, "framing/x  {closed; code 1 ~ /(/} the daemon closes\n").unwrap();
        let e = known_file(&f, ListKind::Failing).unwrap_err().to_string();
        assert!(e.contains(":1: \"framing/x\": bad regex"), "{e}");
        std::fs::write(&f, "framing/x  {closed}  the daemon closes\n").unwrap();
        let k = known_file(&f, ListKind::Failing).unwrap();
        assert_eq!(k[0].reason, "the daemon closes");
        assert_eq!(k[0].signature.as_ref().map(|s| s.text()), Some("closed"));
        let e = check_all_match(k.iter().map(|k| &k.pattern), &["header/y"]).unwrap_err();
        assert!(
            e.to_string().contains(":1: \"framing/x\" matches no case"),
            "{e}"
        );
        assert!(check_all_match(k.iter().map(|k| &k.pattern), &["framing/x"]).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
