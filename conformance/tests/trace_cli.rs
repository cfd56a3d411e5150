//! `virtwire import` and `virtwire replay` from the command line: file names, exit statuses, and
//! errors that say where.

use std::path::PathBuf;
use std::process::{Command, Output};

use virtwire_conformance::trace::{self, Step};

fn virtwire(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_virtwire"))
        .args(args)
        .output()
        .expect("virtwire runs")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("virtwire-trace-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn corpus(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus/traces")
        .join(name)
        .display()
        .to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn import_writes_one_trace_per_connection() {
    let dir = tmpdir("import");
    let d = dir.display().to_string();
    let o = virtwire(&["import", "-o", &d, &corpus("errors.pcapng")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "errors-c0.trace",
            "errors-c1.trace",
            "errors-c2.trace",
            "errors-c3.trace"
        ]
    );
    let t = trace::parse::load(&dir.join("errors-c3.trace")).unwrap();
    assert_eq!(
        t.source,
        ["errors.pcapng conn 3: 127.0.0.1:53796 -> 127.0.0.1:16509"]
    );
    assert!(matches!(t.steps.last(), Some(Step::ExpectClose { .. })));
    // Reviewed traces are not overwritten by accident.
    let o = virtwire(&["import", "-o", &d, &corpus("errors.pcapng")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let o = virtwire(&["import", "--force", "-o", &d, &corpus("errors.pcapng")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Not a capture.
    let o = virtwire(&["import", "-o", &d, &corpus("errors-c0.trace")]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn replay_exit_statuses() {
    let dir = tmpdir("replay");
    let bad = dir.join("bad.trace");
    std::fs::write(&bad, "virtwire-trace 1\n< REPLY remote.X\n").unwrap();
    let bad = bad.display().to_string();
    let target = "test+tcp://127.0.0.1:1/default";

    // No target: a private libvirtd is started (exit 0), or its absence is a harness error.
    let o = virtwire(&["replay", &corpus("errors-c0.trace")]);
    if std::path::Path::new("/usr/sbin/libvirtd").exists() {
        assert_eq!(o.status.code(), Some(0), "no target: {}", stderr(&o));
        assert!(stderr(&o).contains("started by virtwire"), "{}", stderr(&o));
    } else {
        assert_eq!(o.status.code(), Some(3), "no target: {}", stderr(&o));
    }
    // An ssh target is refused, naming what is supported (a harness error).
    let o = virtwire(&[
        "replay",
        "--target",
        "qemu+ssh://host/system",
        &corpus("errors-c0.trace"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("tcp"), "{}", stderr(&o));
    let o = virtwire(&[
        "replay",
        "--write",
        "--target",
        target,
        &corpus("errors-c0.trace"),
    ]);
    assert_eq!(o.status.code(), Some(2), "--write needs --learn");

    let o = virtwire(&["replay", "--target", target, &bad]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("bad.trace:2: missing serial"),
        "{}",
        stderr(&o)
    );

    // Nothing listens on port 1: a harness error, not a failure of the server.
    let o = virtwire(&["replay", "--target", target, &corpus("errors-c0.trace")]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!stderr(&o).contains("panicked"));
}
