//! Paths into a message's JSON: `header.serial`, `body.dom.uuid`,
//! `body.retStats[0].params[*].value`. Keys are separated by `.`, array elements are `[N]`; `[*]`
//! is any element and a key `*` any key.

use std::fmt;

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    /// An object's key.
    Key(String),
    /// Any key of an object (`*`).
    AnyKey,
    /// An array's element.
    Index(usize),
    /// Any element of an array (`[*]`).
    AnyIndex,
}

/// A path: where in the message JSON a rule applies, or where a mismatch is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(pub Vec<Seg>);

impl Path {
    /// Parse a path; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Path, String> {
        if s.is_empty() {
            return Err("empty path".into());
        }
        let mut segs = Vec::new();
        for (n, part) in s.split('.').enumerate() {
            let (key, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if key.is_empty() {
                return Err(if n == 0 && !rest.is_empty() {
                    format!("path {s:?} must start with a key (header, body, …)")
                } else {
                    format!("empty key in path {s:?}")
                });
            }
            if key.contains(']') || key.chars().any(char::is_whitespace) {
                return Err(format!("bad key {key:?} in path {s:?}"));
            }
            segs.push(if key == "*" {
                Seg::AnyKey
            } else {
                Seg::Key(key.to_string())
            });
            while !rest.is_empty() {
                let Some(inner_end) = rest.find(']') else {
                    return Err(format!("unclosed [ in path {s:?}"));
                };
                let inner = &rest[1..inner_end];
                segs.push(if inner == "*" {
                    Seg::AnyIndex
                } else {
                    match inner.parse::<usize>() {
                        Ok(i) if inner.chars().all(|c| c.is_ascii_digit()) => Seg::Index(i),
                        _ => {
                            return Err(format!(
                                "bad index [{inner}] in path {s:?} (a number or *)"
                            ));
                        }
                    }
                });
                rest = &rest[inner_end + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return Err(format!("unexpected {rest:?} after ] in path {s:?}"));
                }
            }
        }
        Ok(Path(segs))
    }

    /// This path with one more key.
    pub fn key(&self, k: &str) -> Path {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        Path(v)
    }

    /// This path with one more index.
    pub fn index(&self, i: usize) -> Path {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Path(v)
    }

    /// True when this pattern (which may hold wildcards) matches the concrete path `p`.
    pub fn matches(&self, p: &Path) -> bool {
        self.0.len() == p.0.len()
            && self.0.iter().zip(&p.0).all(|(a, b)| match (a, b) {
                (Seg::AnyKey, Seg::Key(_)) | (Seg::AnyIndex, Seg::Index(_)) => true,
                (a, b) => a == b,
            })
    }

    /// How specific a pattern is: its segments that are not wildcards.
    pub fn specificity(&self) -> usize {
        self.0
            .iter()
            .filter(|s| !matches!(s, Seg::AnyKey | Seg::AnyIndex))
            .count()
    }

    /// The same path with every index a wildcard (`body.a[3].b` → `body.a[*].b`).
    pub fn generalised(&self) -> Path {
        Path(
            self.0
                .iter()
                .map(|s| match s {
                    Seg::Index(_) => Seg::AnyIndex,
                    s => s.clone(),
                })
                .collect(),
        )
    }

    /// The first key, if the path starts with one (`header`, `body`).
    pub fn root(&self) -> Option<&str> {
        match self.0.first() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// The value at this concrete path in `v`, if there is one (wildcards find nothing).
    pub fn get<'v>(&self, v: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        let mut cur = v;
        for s in &self.0 {
            cur = match s {
                Seg::Key(k) => cur.get(k.as_str())?,
                Seg::Index(i) => cur.get(*i)?,
                Seg::AnyKey | Seg::AnyIndex => return None,
            };
        }
        Some(cur)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::AnyKey if i == 0 => f.write_str("*")?,
                Seg::AnyKey => f.write_str(".*")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::AnyIndex => f.write_str("[*]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        for s in [
            "header.serial",
            "body.dom.uuid",
            "body.retStats[0].params[*].value",
            "body.a[1][2]",
            "body.*.x",
        ] {
            assert_eq!(Path::parse(s).unwrap().to_string(), s);
        }
        for bad in [
            "",
            "[0]",
            "body..x",
            "body.x[",
            "body.x[a]",
            "body.x[0]y",
            "body.x[-1]",
            "a b",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching() {
        let pat = Path::parse("body.retStats[*].params[*].value").unwrap();
        let p = Path::parse("body.retStats[0].params[3].value").unwrap();
        assert!(pat.matches(&p));
        assert!(!p.matches(&pat));
        assert_eq!(p.generalised(), pat);
        assert_eq!(pat.specificity(), 4);
        let v = serde_json::json!({"body": {"a": [1, {"b": 2}]}});
        assert_eq!(
            Path::parse("body.a[1].b").unwrap().get(&v),
            Some(&serde_json::json!(2))
        );
        assert_eq!(Path::parse("body.a[2]").unwrap().get(&v), None);
    }
}
