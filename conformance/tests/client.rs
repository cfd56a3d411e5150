//! `virtwire check-client` against the real libvirt 9.0 clients on this machine: virsh and
//! python-libvirt (`scripts/setup.sh` installs both), each with its session recorded on the fly
//! against a private libvirtd and its committed known-failing list. The run must come out as the
//! list says (exit 0), the known crash must be there with its signal, and the cases that must pass
//! must pass. Without virsh, libvirtd or python3-libvirt the tests print SKIPPED and pass, unless
//! `VIRTWIRE_REQUIRE_ALL=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn skip(why: &str) {
    if std::env::var("VIRTWIRE_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("VIRTWIRE_REQUIRE_ALL=1 but {why}");
    }
    eprintln!("SKIPPED: {why}");
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn have(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn libvirtd_present() -> bool {
    Path::new("/usr/sbin/libvirtd").exists() || have("libvirtd", &["--version"])
}

/// Run check-client with `known` against `command`; the JSON report.
fn check_client(name: &str, known: &str, command: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join(format!("{name}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_virtwire"))
        .current_dir(root())
        .arg("check-client")
        .arg("--known-failing")
        .arg(root().join(known))
        .arg("--json")
        .arg(&json)
        .arg("--")
        .args(command)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "check-client against {name} did not come out as {known} says:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

fn verdict<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

/// What both clients must show.
fn common(report: &Value, client: &str) {
    let cases = report["cases"].as_array().unwrap();
    let ids: std::collections::HashSet<&str> =
        cases.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), cases.len(), "case IDs are unique");
    assert!(
        cases.len() >= 36,
        "{client}: {} cases; the schema generates at-max / over-max cases for every bounded field of the session's replies",
        cases.len()
    );
    assert!(
        ids.iter()
            .any(|i| i.starts_with("client/limits/connect_list_all_domains/")),
        "{client}: generated cases for CONNECT_LIST_ALL_DOMAINS' reply"
    );
    assert_eq!(
        verdict(report, "client/baseline")["verdict"],
        "pass",
        "{client}"
    );
    let crash = verdict(report, "client/order/event-before-open-reply");
    assert_eq!(crash["verdict"], "fail", "{client}: {crash}");
    assert!(
        crash["actual"].as_str().unwrap().contains("SIGSEGV"),
        "{client}: {crash}"
    );
    assert_eq!(crash["known"]["list"], "failing", "{client}");
    // The client must refuse what breaks the framing or the declared maxima, and survive the rest.
    for id in [
        "client/framing/length-0xffffffff",
        "client/framing/length-over-limit",
        "client/framing/length-below-header",
        "client/framing/close-mid-frame",
        "client/framing/reset",
        "client/framing/one-byte-at-a-time",
        "client/keepalive/server-ping",
        "client/keepalive/silence-after-call",
        "client/body/count-huge",
        "client/body/error-all-absent",
        "client/body/error-message-over-max",
        "client/limits/connect_list_all_domains/domains/over-max",
    ] {
        assert_eq!(verdict(report, id)["verdict"], "pass", "{client}: {id}");
    }
    // libvirt's own encoder writes strict XDR.
    assert_eq!(
        verdict(report, "client/strict-xdr")["verdict"],
        "pass",
        "{client}"
    );
    // Replies come one at a time from a libvirt client: it never pipelines.
    assert_eq!(
        verdict(report, "client/order/replies-out-of-order")["verdict"],
        "unsupported",
        "{client}"
    );
}

#[test]
fn virsh_9_0_against_the_scripted_server() {
    if !have("virsh", &["--version"]) || !libvirtd_present() {
        return skip("virsh or libvirtd is not installed (scripts/setup.sh)");
    }
    if support_schema_missing() {
        return skip("no .x files (scripts/setup.sh --xdr-only)");
    }
    let report = check_client(
        "virsh",
        "corpus/known-failing/virsh-9.0.txt",
        &[
            "virsh",
            "-k",
            "1",
            "-K",
            "2",
            "-c",
            "{uri}",
            "list --all; dominfo test; schedinfo test",
        ],
    );
    common(&report, "virsh");
    // schedinfo's reply holds typed parameters: a union (remote_typed_param_value) whose
    // discriminant is generated one past its last case; libvirt's decoder must refuse it.
    let union = verdict(
        &report,
        "client/union/domain_get_scheduler_parameters/params.0.value/unknown-arm",
    );
    assert_eq!(union["verdict"], "pass", "{union}");
    assert!(
        union["actual"]
            .as_str()
            .unwrap()
            .contains("Unable to decode message payload"),
        "{union}"
    );
    // virsh's -k asks for keepalive; a server without it is refused before any work.
    assert_eq!(
        verdict(&report, "client/keepalive/silence-without-keepalive")["verdict"],
        "unsupported"
    );
}

#[test]
fn python_libvirt_9_0_against_the_scripted_server() {
    let py = "/usr/bin/python3";
    if !have(py, &["-c", "import libvirt"]) || !libvirtd_present() {
        return skip("python3-libvirt or libvirtd is not installed (scripts/setup.sh)");
    }
    if support_schema_missing() {
        return skip("no .x files (scripts/setup.sh --xdr-only)");
    }
    let script = root().join("conformance/tests/clients/python_libvirt.py");
    let report = check_client(
        "python-libvirt",
        "corpus/known-failing/python-libvirt-9.0.txt",
        &[py, script.to_str().unwrap(), "{uri}"],
    );
    common(&report, "python-libvirt");
    // The script downloads a screenshot: the stream cases apply.
    for id in [
        "client/stream/hole-not-sparse",
        "client/stream/error-mid-stream",
    ] {
        assert_eq!(verdict(&report, id)["verdict"], "pass", "{id}");
    }
}

fn support_schema_missing() -> bool {
    !root().join(".cache/libvirt-9.0.0").is_dir()
        && std::env::var_os("VIRTWIRE_PROTOCOL_DIR").is_none()
}
