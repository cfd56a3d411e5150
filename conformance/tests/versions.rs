//! libvirt 9.0.0 and 11.3.0 side by side from the command line and the library: the committed
//! captures (made with 9.0) decode identically under 11.3's schema for every procedure in both,
//! `--libvirt-version` chooses the schema (and says how to get a missing one), `schema diff` and
//! `schema show` print what the protocol crate computes, and `fetch-protocol` checks its checksum.
//! The trees are the repository's `.cache/libvirt-<version>` (`scripts/setup.sh`); without them the
//! tests skip loudly, and fail under `VIRTWIRE_REQUIRE_ALL=1`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use virtwire_conformance::protocol_files::{self, FetchError, Release};
use virtwire_conformance::wire::{Decoder, Options, Record};
use virtwire_protocol::schema::Schema;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tree(version: &str) -> Option<PathBuf> {
    let dir = repo().join(".cache").join(format!("libvirt-{version}"));
    if dir.join("src/remote/remote_protocol.x").is_file() {
        return Some(dir);
    }
    let msg = format!("no .cache/libvirt-{version} (scripts/setup.sh)");
    if std::env::var("VIRTWIRE_REQUIRE_ALL").is_ok_and(|v| v == "1") {
        panic!("{msg} (VIRTWIRE_REQUIRE_ALL=1)");
    }
    eprintln!("SKIPPED: {msg} — this test checked nothing");
    None
}

fn both() -> Option<(Schema, Schema)> {
    let (a, b) = (tree("9.0.0")?, tree("11.3.0")?);
    Some((Schema::load_dir(&a).unwrap(), Schema::load_dir(&b).unwrap()))
}

fn virtwire(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_virtwire"))
        .args(args)
        .env_remove("VIRTWIRE_PROTOCOL_DIR")
        // No user cache: only the checkout's .cache is searched.
        .env(
            "XDG_CACHE_HOME",
            std::env::temp_dir().join("virtwire-versions-no-user-cache"),
        )
        .output()
        .expect("virtwire runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every record of a capture as `decode --format json` prints it, plus the (prog, proc) pairs of
/// messages whose body the schema decoded.
fn decode_json(schema: &Schema, path: &Path) -> (Vec<String>, BTreeSet<(u32, i32)>) {
    let decoder = Decoder::with_schema(Options::default(), schema.clone());
    let mut lines = Vec::new();
    let mut procs = BTreeSet::new();
    let mut sink = |r: &Record<'_>| -> std::io::Result<()> {
        if let Record::Message(m) = r
            && m.error.is_none()
            && schema.body_type_name(&m.frame.header).is_some()
        {
            procs.insert((m.frame.header.prog, m.frame.header.procedure));
        }
        lines.push(serde_json::to_string(r).unwrap());
        Ok(())
    };
    let bytes = std::fs::read(path).unwrap();
    decoder
        .decode_capture(
            &path.display().to_string(),
            std::io::Cursor::new(bytes),
            &mut sink,
        )
        .unwrap();
    (lines, procs)
}

#[test]
fn captures_made_with_9_0_decode_identically_under_11_3() {
    let Some((s90, s113)) = both() else { return };
    let dir = repo().join("corpus/traces");
    let mut captures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    captures.sort();
    assert!(captures.len() >= 8, "{captures:?}");
    let mut covered = BTreeSet::new();
    let mut messages = 0;
    for path in &captures {
        let (a, pa) = decode_json(&s90, path);
        let (b, pb) = decode_json(&s113, path);
        // Every procedure these captures use exists in both versions.
        assert_eq!(pa, pb, "{}", path.display());
        assert_eq!(a.len(), b.len(), "{}", path.display());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x, y, "{} record {i}", path.display());
        }
        messages += a
            .iter()
            .filter(|l| l.contains(r#""record":"message""#))
            .count();
        covered.extend(pa);
    }
    eprintln!(
        "{} captures, {messages} messages, {} procedures with typed bodies decoded identically",
        captures.len(),
        covered.len()
    );
    assert!(covered.len() >= 20, "{covered:?}");
    assert!(messages >= 100, "{messages}");
}

#[test]
fn libvirt_version_chooses_the_schema_and_a_missing_one_says_how_to_get_it() {
    if tree("9.0.0").is_none() || tree("11.3.0").is_none() {
        return;
    }
    let cap = repo().join("corpus/traces/lifecycle.pcapng");
    let cap = cap.to_str().unwrap();
    for v in ["9.0.0", "11.3", "9.0"] {
        let out = virtwire(&["decode", "--libvirt-version", v, "--format", "json", cap]);
        assert_eq!(out.status.code(), Some(0), "{v}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(r#""body_type":"remote_connect_get_capabilities_ret""#),
            "{v}: bodies decoded by the schema"
        );
        assert!(!stdout.contains(r#""error":{"#), "{v}: {stdout}");
    }
    let out = virtwire(&["decode", "--libvirt-version", "12.8", cap]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for part in ["libvirt 12.8", "present: 9.0.0, 11.3.0", "--protocol-dir"] {
        assert!(err.contains(part), "{part}: {err}");
    }
    let out = virtwire(&["decode", "--libvirt-version", "11.2.0", cap]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("libvirt 11.2.0"), "{err}");
    // A known release that is absent: the exact command.
    let out = Command::new(env!("CARGO_BIN_EXE_virtwire"))
        .args(["decode", "--libvirt-version", "11.3.0", cap])
        .env_remove("VIRTWIRE_PROTOCOL_DIR")
        .env("XDG_CACHE_HOME", std::env::temp_dir())
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    // (Found in the checkout's .cache: the binary knows where it was built.)
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // --protocol-dir and --libvirt-version are one choice.
    let out = virtwire(&[
        "decode",
        "--libvirt-version",
        "9.0",
        "--protocol-dir",
        "/x",
        cap,
    ]);
    assert_eq!(out.status.code(), Some(2));
    // Every subcommand that reads bodies takes the flag.
    for sub in ["decode", "import", "replay", "record", "check"] {
        let out = virtwire(&[sub, "--help"]);
        assert!(
            text(&out.stdout).contains("--libvirt-version <VERSION>"),
            "{sub}: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn schema_diff_text_and_json() {
    if tree("9.0.0").is_none() || tree("11.3.0").is_none() {
        return;
    }
    let out = virtwire(&["schema", "diff", "9.0.0", "11.3.0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(
        t.contains("procedures: +11 -0 renamed 0 bodies changed 0; types: +13 -0 changed 2"),
        "{t}"
    );
    assert!(
        t.contains("remote  451 DOMAIN_SET_THROTTLE_GROUP: added"),
        "{t}"
    );
    assert!(
        t.contains("added struct remote_node_device_update_args"),
        "{t}"
    );
    let out = virtwire(&["schema", "diff", "9.0", "11.3", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["format"], "virtwire-schema-diff/1");
    assert_eq!(j["counts"]["procedures_added"], 11);
    assert_eq!(j["counts"]["constants_changed"], 0);
    assert_eq!(j["procedures"].as_array().unwrap().len(), 11);
    // A directory works as well as a version; a schema against itself is empty.
    let d = repo().join(".cache/libvirt-11.3.0");
    let out = virtwire(&["schema", "diff", d.to_str().unwrap(), "11.3"]);
    assert!(
        text(&out.stdout).contains("procedures: +0 -0"),
        "{}",
        text(&out.stdout)
    );
    let out = virtwire(&["schema", "diff", "9.0", "13.0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn schema_show_prints_a_body_with_every_bound() {
    if tree("11.3.0").is_none() {
        return;
    }
    let out = virtwire(&[
        "schema",
        "show",
        "REMOTE_PROC_NETWORK_GET_METADATA",
        "--libvirt-version",
        "11.3",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    for part in [
        "REMOTE_PROC_NETWORK_GET_METADATA = 445 (program remote 0x20008086 version 1",
        "args: struct remote_network_get_metadata_args {",
        "string name<REMOTE_STRING_MAX = 4194304>;",
        "string<REMOTE_STRING_MAX = 4194304> *uri;",
        "ret: struct remote_network_get_metadata_ret {",
        "string metadata<REMOTE_STRING_MAX = 4194304>;",
    ] {
        assert!(t.contains(part), "{part}:\n{t}");
    }
    // Not in 9.0.
    let out = virtwire(&[
        "schema",
        "show",
        "NETWORK_GET_METADATA",
        "--libvirt-version",
        "9.0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no procedure"),
        "{}",
        text(&out.stderr)
    );
}

/// `fetch` checks the SHA-256 before unpacking: a local tarball (file:// URL) of the 9.0 files with
/// its right checksum unpacks and loads; with a wrong one nothing is unpacked.
#[test]
fn fetch_checks_the_checksum_before_unpacking() {
    let Some(src) = tree("9.0.0") else { return };
    let work = std::env::temp_dir().join(format!("virtwire-fetch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let tarball = work.join("libvirt_9.0.0.orig.tar.xz");
    let st = Command::new("tar")
        .arg("-cJf")
        .arg(&tarball)
        .arg("-C")
        .arg(src.parent().unwrap())
        .arg("libvirt-9.0.0")
        .status()
        .unwrap();
    assert!(st.success());
    let sum = Command::new("sha256sum").arg(&tarball).output().unwrap();
    let sum = text(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let url: &'static str = Box::leak(format!("file://{}", tarball.display()).into_boxed_str());
    let bad = Release {
        version: "9.0.0",
        url,
        sha256: "0000000000000000000000000000000000000000000000000000000000000000",
        suite: "test",
    };
    let cache = work.join("cache");
    match protocol_files::fetch(&bad, &cache) {
        Err(FetchError::Checksum { got, .. }) => assert_eq!(got, sum),
        other => panic!("{other:?}"),
    }
    assert!(!cache.join("libvirt-9.0.0").exists());
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        0,
        "temporary files left"
    );
    let good = Release {
        sha256: Box::leak(sum.into_boxed_str()),
        ..bad
    };
    let dir = protocol_files::fetch(&good, &cache).unwrap();
    assert_eq!(dir, cache.join("libvirt-9.0.0"));
    let s = Schema::load_dir(&dir).unwrap();
    assert_eq!(s.programs().len(), 8);
    // Unknown releases are refused with the alternative.
    let out = virtwire(&["fetch-protocol", "12.8"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--protocol-dir"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(protocol_files::release("11.3").unwrap().version, "11.3.0");
    std::fs::remove_dir_all(&work).unwrap();
}

/// The catalogue's hand-written families and traces against libvirtd 9.0.0 (installed) and 11.3.0
/// (the private prefix): every built-in case has the same verdict on both, and the three committed
/// traces whose replies changed in 11.x are the differing rows, listed first, with both Actuals.
#[test]
fn matrix_9_0_and_11_3() {
    let daemon = repo().join(".cache/libvirtd-11.3.0/usr/sbin/libvirtd");
    if tree("9.0.0").is_none() || tree("11.3.0").is_none() {
        return;
    }
    if !daemon.is_file() || !Path::new("/usr/sbin/libvirtd").is_file() {
        let msg = "libvirtd 9.0 or .cache/libvirtd-11.3.0 missing (scripts/setup.sh)";
        if std::env::var("VIRTWIRE_REQUIRE_ALL").is_ok_and(|v| v == "1") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let json = std::env::temp_dir().join(format!("virtwire-matrix-{}.json", std::process::id()));
    let kf = repo().join("corpus/known-failing");
    let out = virtwire(&[
        "matrix",
        "--versions",
        "9.0.0,11.3",
        "--known-failing-dir",
        kf.to_str().unwrap(),
        // The hand-written families and the traces (the generated families are thousands of
        // cases: CI's matrix step runs them all).
        "--run",
        "framing/*",
        "--run",
        "header/*",
        "--run",
        "dispatch/*",
        "--run",
        "trace/*",
        "--jobs",
        "2",
        "--json",
        json.to_str().unwrap(),
    ]);
    let md = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{md}\n{}", text(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(j["format"], "virtwire-matrix/1");
    let versions: Vec<&str> = j["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["9.0.0", "11.3"]);
    assert!(
        j["versions"][1]["target"]
            .as_str()
            .unwrap()
            .contains("(libvirt) 11.3.0")
    );
    let cases = j["cases"].as_array().unwrap();
    let differing: Vec<&str> = cases
        .iter()
        .filter(|c| c["differs"] == true)
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        differing,
        ["trace/errors-c2", "trace/errors-c3", "trace/lifecycle-c1"],
        "{md}"
    );
    // Differing rows first; each with both verdicts and Actuals.
    assert!(cases[..3].iter().all(|c| c["differs"] == true));
    let c2 = &cases[0]["results"];
    assert_eq!(c2["9.0.0"]["verdict"], "pass");
    assert_eq!(c2["11.3"]["verdict"], "fail");
    assert_eq!(c2["11.3"]["known"], true);
    assert!(c2["11.3"]["actual"].as_str().unwrap().contains("%1$s"));
    assert!(cases.len() >= 30, "{}", cases.len());
    assert!(md.contains("## Verdicts that differ (3)"), "{md}");
    assert!(
        md.contains("| `trace/errors-c2` | pass | fail (known) |"),
        "{md}"
    );
}

/// `check --libvirtd` with 11.3's binary from the private prefix: it runs on its own libraries
/// (LD_LIBRARY_PATH from the prefix) and is judged by 11.3's schema (the daemon's own version).
#[test]
fn check_starts_the_11_3_daemon_from_its_prefix() {
    let daemon = repo().join(".cache/libvirtd-11.3.0/usr/sbin/libvirtd");
    if tree("11.3.0").is_none() {
        return;
    }
    if !daemon.is_file() {
        let msg = ".cache/libvirtd-11.3.0 missing (scripts/setup.sh)";
        if std::env::var("VIRTWIRE_REQUIRE_ALL").is_ok_and(|v| v == "1") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let out = virtwire(&[
        "check",
        "--libvirtd",
        daemon.to_str().unwrap(),
        "--run",
        "dispatch/*",
        "--known-failing",
        repo()
            .join("corpus/known-failing/libvirtd-11.3.txt")
            .to_str()
            .unwrap(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}\n{err}", text(&out.stdout));
    assert!(
        err.contains("(libvirt) 11.3.0 started by virtwire"),
        "{err}"
    );
}
