//! libvirt's read-only rule as libvirt enforces it: which remote procedures a read-only connection
//! is refused, derived from libvirt's own sources by `scripts/derive-readonly.py` and committed as
//! one table per libvirt release (`readonly/libvirt-<version>.tsv`; docs/readonly.md says how they
//! were made and how to make another).
//!
//! The mechanism: libvirtd marks a connection that arrives on the read-only socket VIR_CONNECT_RO
//! (src/remote/remote_daemon_dispatch.c, remoteDispatchConnectOpen: "If this connection arrived on
//! a readonly socket, force the connection to be readonly"), and each public API that changes
//! state starts with `virCheckReadOnlyGoto(conn->flags, error)` (src/internal.h), which reports
//! VIR_ERR_OPERATION_DENIED "read only access prevents <the API's name>" (virerror.c formats it as
//! "operation forbidden: read only access prevents virDomainDestroy"). The `@acl:` annotations of
//! remote_protocol.x and viraccessperm.h's `@anonymous` flags feed a different mechanism (the ACL
//! drivers), so they are not the rule; where they disagree with the table, that is libvirt's own
//! annotation being inconsistent (see `security::cases`).

use std::sync::OnceLock;

/// Whether libvirt refuses a procedure on a read-only connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Always: an unconditional `virCheckReadOnlyGoto` in the API the procedure reaches.
    Yes,
    /// Never: no read-only check on the way.
    No,
    /// Only when the condition holds (a check under an `if`, e.g. `flags & VIR_DOMAIN_XML_SECURE`);
    /// a call with zero flags and arguments does not meet it.
    If(String),
}

/// One procedure's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// REMOTE_PROC_* number.
    pub number: i32,
    /// The procedure's name without `REMOTE_PROC_` (`DOMAIN_GET_INFO`).
    pub name: String,
    /// What libvirt does on a read-only connection.
    pub refused: Refused,
    /// The public API the procedure reaches (`virDomainGetInfo`), or the daemon's handler when it
    /// calls none (`remoteDispatchConnectSetIdentity`).
    pub api: String,
    /// Where in libvirt's tree: the check's `file:line`, or the API's (handler's) definition when
    /// there is no check.
    pub at: String,
    /// What else the derivation noted (the other APIs a hand-written handler calls, …).
    pub note: String,
}

impl Row {
    /// The exact message libvirt's read-only refusal carries for this row's API.
    pub fn refusal_text(&self) -> String {
        format!(
            "operation forbidden: read only access prevents {}",
            self.api
        )
    }
}

/// One libvirt release's table.
#[derive(Clone, Debug)]
pub struct Table {
    /// `major.minor.micro`, as in the file name.
    pub version: String,
    /// The same as `major * 1_000_000 + minor * 1000 + micro` (CONNECT_GET_LIB_VERSION's form).
    pub number: u64,
    rows: Vec<Row>,
}

impl Table {
    /// Parse a table in the format `scripts/derive-readonly.py` prints: `#` comment lines, then
    /// `number  PROC  yes|no|if  api  file:line  condition-or-note`, tab-separated.
    pub fn parse(version: &str, text: &str) -> Result<Table, String> {
        let number = version_number(version)
            .ok_or_else(|| format!("read-only table: {version:?} is not a version"))?;
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("readonly/libvirt-{version}.tsv:{}", i + 1);
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 5 {
                return Err(format!(
                    "{at}: {} fields, want number, procedure, refused, api, where[, condition]",
                    f.len()
                ));
            }
            let num = f[0]
                .parse::<i32>()
                .map_err(|_| format!("{at}: procedure number {:?}", f[0]))?;
            let note = f.get(5).copied().unwrap_or("").to_string();
            let refused = match f[2] {
                "yes" => Refused::Yes,
                "no" => Refused::No,
                "if" if !note.is_empty() => Refused::If(note.clone()),
                other => {
                    return Err(format!(
                        "{at}: refused is {other:?}, want yes, no, or if with a condition"
                    ));
                }
            };
            if f[1].is_empty() || f[3].is_empty() {
                return Err(format!("{at}: empty procedure or api"));
            }
            rows.push(Row {
                number: num,
                name: f[1].to_string(),
                refused,
                api: f[3].to_string(),
                at: f[4].to_string(),
                note,
            });
        }
        if rows.is_empty() {
            return Err(format!("read-only table for libvirt {version} has no rows"));
        }
        Ok(Table {
            version: version.to_string(),
            number,
            rows,
        })
    }

    /// The row of the procedure named `name` (`DOMAIN_GET_INFO`).
    pub fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }

    /// Every row.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }
}

/// `9.0.0` → 9000000.
pub fn version_number(v: &str) -> Option<u64> {
    let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
    let (a, b, c) = (parts.next()??, parts.next()??, parts.next()??);
    (parts.next().is_none() && b < 1000 && c < 1000).then_some(a * 1_000_000 + b * 1000 + c)
}

/// 9000000 → `9.0.0`.
pub fn version_text(n: u64) -> String {
    format!("{}.{}.{}", n / 1_000_000, n / 1000 % 1000, n % 1000)
}

/// The committed tables, oldest first.
const SOURCES: &[(&str, &str)] = &[
    ("9.0.0", include_str!("readonly/libvirt-9.0.0.tsv")),
    ("11.3.0", include_str!("readonly/libvirt-11.3.0.tsv")),
];

/// The committed tables, oldest first (parsed once; `Err` names the bad line).
pub fn tables() -> Result<&'static [Table], String> {
    static T: OnceLock<Result<Vec<Table>, String>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v = SOURCES
            .iter()
            .map(|(ver, text)| Table::parse(ver, text))
            .collect::<Result<Vec<_>, _>>()?;
        v.sort_by_key(|t| t.number);
        Ok(v)
    })
    .as_ref()
    .map(Vec::as_slice)
    .map_err(Clone::clone)
}

/// The table for a daemon that reports library version `lib_ver` (CONNECT_GET_LIB_VERSION): its
/// own release's, else the newest older one, else the oldest; with the reason when it is not the
/// daemon's own release.
pub fn table_for(tables: &[Table], lib_ver: Option<u64>) -> Option<(&Table, Option<String>)> {
    let newest = tables.last()?;
    let Some(v) = lib_ver else {
        return Some((
            newest,
            Some(format!(
                "the daemon did not say its version; libvirt {}'s table is used",
                newest.version
            )),
        ));
    };
    if let Some(t) = tables.iter().find(|t| t.number == v) {
        return Some((t, None));
    }
    let t = tables
        .iter()
        .rev()
        .find(|t| t.number < v)
        .unwrap_or(&tables[0]);
    Some((
        t,
        Some(format!(
            "no table was derived for libvirt {}; libvirt {}'s is used",
            version_text(v),
            t.version
        )),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_tables_parse_and_name_what_libvirt_does() {
        let t = tables().unwrap();
        assert_eq!(
            t.iter().map(|t| t.version.as_str()).collect::<Vec<_>>(),
            ["9.0.0", "11.3.0"]
        );
        for table in t {
            let row = |n: &str| {
                table
                    .row(n)
                    .unwrap_or_else(|| panic!("{n} in {}", table.version))
            };
            // A setter annotated `@acl: domain:read` only: libvirt refuses it all the same.
            let s = row("DOMAIN_SET_SCHEDULER_PARAMETERS");
            assert_eq!(s.refused, Refused::Yes);
            assert_eq!(s.api, "virDomainSetSchedulerParameters");
            assert!(s.at.starts_with("src/libvirt-domain.c:"), "{s:?}");
            assert_eq!(
                s.refusal_text(),
                "operation forbidden: read only access prevents virDomainSetSchedulerParameters"
            );
            assert_eq!(row("DOMAIN_GET_INFO").refused, Refused::No);
            assert_eq!(row("DOMAIN_DESTROY").refused, Refused::Yes);
            assert_eq!(row("NODE_GET_SEV_INFO").refused, Refused::Yes);
            // Getters annotated with non-anonymous permissions: no read-only check.
            assert_eq!(row("NODE_DEVICE_GET_XML_DESC").refused, Refused::No);
            assert_eq!(row("DOMAIN_MIGRATE_GET_MAX_DOWNTIME").refused, Refused::No);
            // Hand-written in the daemon, no public API: no check.
            let id = row("CONNECT_SET_IDENTITY");
            assert_eq!(id.refused, Refused::No);
            assert_eq!(id.api, "remoteDispatchConnectSetIdentity");
            assert!(
                matches!(row("DOMAIN_GET_XML_DESC").refused, Refused::If(ref c) if c.contains("VIR_DOMAIN_XML_SECURE"))
            );
        }
        // A getter that 9.0.0 refused and 11.3.0 no longer does.
        assert_eq!(
            t[0].row("NODE_DEVICE_GET_AUTOSTART").unwrap().refused,
            Refused::Yes
        );
        assert_eq!(
            t[1].row("NODE_DEVICE_GET_AUTOSTART").unwrap().refused,
            Refused::No
        );
        // 11.3.0's new setter without a check (FINDINGS.md S5).
        assert_eq!(
            t[1].row("DOMAIN_DEL_THROTTLE_GROUP").unwrap().refused,
            Refused::No
        );
        assert_eq!(
            t[1].row("DOMAIN_SET_THROTTLE_GROUP").unwrap().refused,
            Refused::Yes
        );
    }

    #[test]
    fn a_table_is_picked_by_the_daemons_version() {
        let t = tables().unwrap();
        assert_eq!(table_for(t, Some(9_000_000)).unwrap().0.version, "9.0.0");
        assert!(table_for(t, Some(9_000_000)).unwrap().1.is_none());
        assert_eq!(table_for(t, Some(11_003_000)).unwrap().0.version, "11.3.0");
        let (x, why) = table_for(t, Some(10_000_000)).unwrap();
        assert_eq!(x.version, "9.0.0");
        assert!(why.unwrap().contains("10.0.0"));
        assert_eq!(table_for(t, Some(8_000_000)).unwrap().0.version, "9.0.0");
        assert_eq!(table_for(t, None).unwrap().0.version, "11.3.0");
        assert_eq!(version_number("11.3.0"), Some(11_003_000));
        assert_eq!(version_number("11.3"), None);
        assert_eq!(version_text(11_003_000), "11.3.0");
    }

    #[test]
    fn bad_tables_are_clear_errors() {
        assert!(
            Table::parse("9.0.0", "# only comments\n")
                .unwrap_err()
                .contains("no rows")
        );
        let e = Table::parse("9.0.0", "1\tX\tmaybe\tvirX\tsrc/x.c:1\n").unwrap_err();
        assert!(e.contains(":1: refused is \"maybe\""), "{e}");
        let e = Table::parse("9.0.0", "1\tX\tif\tvirX\tsrc/x.c:1\n").unwrap_err();
        assert!(e.contains("condition"), "{e}");
        assert!(Table::parse("9.0.0", "x\tX\tno\tvirX\tsrc/x.c:1\n").is_err());
        assert!(Table::parse("9.0.0", "1\tX\tno\n").is_err());
        assert!(Table::parse("nine", "1\tX\tno\tvirX\tsrc/x.c:1\n").is_err());
    }
}
