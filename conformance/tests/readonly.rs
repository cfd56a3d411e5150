//! The read-only family follows libvirt's own mechanism (virCheckReadOnlyGoto in each public API,
//! derived into conformance/src/catalogue/readonly/ by scripts/derive-readonly.py), not the `@acl`
//! annotations: against a fake read-only socket (support/fake_ro.rs) a refused procedure that is
//! answered REPLY/OK or with another refusal fails, the annotation's disagreement is its own
//! non-strict case, a call the argument checks refuse is retried with a descriptor, and the table
//! is picked by the daemon's version. The derivation script is checked on a tiny synthetic tree.

mod support;
// Its own file, not in support/mod.rs: the fake read-only socket is this test's alone.
#[path = "support/fake_ro.rs"]
mod fake_ro;

use std::path::Path;
use std::sync::Arc;

use fake_ro::{FakeRo, Reply};
use virtwire_conformance::runner::{self, Config, Pattern, RunReport, Verdict};
use virtwire_conformance::wire::Judge;
use virtwire_protocol::{Compat, Limits};

/// REMOTE_PROC_* numbers used here (libvirt 9.0.0 and 11.3.0 alike).
const DOMAIN_DESTROY: i32 = 12;
const DOMAIN_GET_INFO: i32 = 16;
const DOMAIN_SET_SCHEDULER_PARAMETERS: i32 = 58;
const DOMAIN_OPEN_GRAPHICS: i32 = 249;
const NODE_DEVICE_GET_AUTOSTART: i32 = 433;

const V9: u64 = 9_000_000;
const V11: u64 = 11_003_000;

fn denied(api: &str) -> Reply {
    Reply::Error(
        29,
        format!("operation forbidden: read only access prevents {api}"),
    )
}

/// Run `ids` (and the read-only open they need) against `fake`; `None` when the schema is not
/// installed (a skip, a failure under VIRTWIRE_REQUIRE_ALL=1).
fn run(fake: &FakeRo, ids: &[&str]) -> Option<RunReport> {
    let schema = Arc::new(support::schema_or_skip("the read-only cases")?);
    let all = virtwire_conformance::catalogue::builtin(Some(&schema));
    let cfg = Config {
        jobs: 1,
        run: ids
            .iter()
            .chain(&["security/readonly-open"])
            .map(|p| Pattern::new(p, "test").unwrap())
            .collect(),
        ..Config::default()
    };
    let cases = runner::select(&all, &cfg).expect("the patterns match cases");
    let judge = Arc::new(Judge::new(
        Limits::default(),
        Compat::Libvirt,
        Some((*schema).clone()),
    ));
    Some(runner::run(
        &cases,
        &cfg,
        Box::new(fake.connector()),
        judge,
        None,
        &mut (),
    ))
}

fn verdict(report: &RunReport, id: &str) -> (Verdict, String) {
    let c = report
        .cases
        .iter()
        .find(|c| c.case.id == id)
        .unwrap_or_else(|| panic!("{id} did not run"));
    (
        c.verdict,
        format!("{id}: {:?} | {} | {}", c.verdict, c.expected, c.actual),
    )
}

#[test]
fn a_refused_procedure_answered_ok_fails_the_must_case() {
    // DOMAIN_SET_SCHEDULER_PARAMETERS is annotated `@acl: domain:read` only, but
    // virDomainSetSchedulerParameters has virCheckReadOnlyGoto: a server that runs it is wrong.
    let fake = FakeRo::start(V9, |p, _| match p {
        DOMAIN_SET_SCHEDULER_PARAMETERS => Reply::Ok(Vec::new()),
        _ => Reply::Error(1, "unexpected".into()),
    });
    let id = "security/readonly-domain-set-scheduler-parameters";
    let Some(report) = run(&fake, &[id]) else {
        return;
    };
    let (v, what) = verdict(&report, id);
    assert_eq!(v, Verdict::Fail, "{what}");
    assert!(
        what.contains("read only access prevents virDomainSetSchedulerParameters"),
        "{what}"
    );
    assert!(what.contains("libvirt 9.0.0"), "{what}");
}

#[test]
fn another_refusal_text_fails_and_libvirts_own_passes() {
    let id = "security/readonly-domain-destroy";
    // The right code, the wrong API named: not libvirt's refusal of this call.
    let fake = FakeRo::start(V9, |_, _| denied("virDomainShutdown"));
    let Some(report) = run(&fake, &[id]) else {
        return;
    };
    let (v, what) = verdict(&report, id);
    assert_eq!(v, Verdict::Fail, "{what}");
    drop(fake);
    // A different code with libvirt's words.
    let fake = FakeRo::start(V9, |_, _| {
        Reply::Error(1, "read only access prevents virDomainDestroy".into())
    });
    let (v, what) = verdict(&run(&fake, &[id]).unwrap(), id);
    assert_eq!(v, Verdict::Fail, "{what}");
    drop(fake);
    let fake = FakeRo::start(V9, |p, _| match p {
        DOMAIN_DESTROY => denied("virDomainDestroy"),
        _ => Reply::Error(1, "unexpected".into()),
    });
    let (v, what) = verdict(&run(&fake, &[id]).unwrap(), id);
    assert_eq!(v, Verdict::Pass, "{what}");
}

#[test]
fn an_annotation_that_disagrees_with_the_check_is_its_own_non_strict_case() {
    // libvirt's own behaviour: the setter refused, the getter not.
    let fake = FakeRo::start(V9, |p, _| match p {
        DOMAIN_SET_SCHEDULER_PARAMETERS => denied("virDomainSetSchedulerParameters"),
        DOMAIN_GET_INFO => Reply::Error(42, "Domain not found".into()),
        _ => Reply::Error(1, "unexpected".into()),
    });
    let must = "security/readonly-domain-set-scheduler-parameters";
    let should = "security/readonly-acl-domain-set-scheduler-parameters";
    let info = "security/readonly-domain-get-info";
    let Some(report) = run(&fake, &[must, should, info]) else {
        return;
    };
    let (v, what) = verdict(&report, must);
    assert_eq!(v, Verdict::Pass, "{what}");
    let (v, what) = verdict(&report, should);
    assert_eq!(v, Verdict::NonStrict, "{what}");
    assert!(what.contains("@acl domain:read"), "{what}");
    let (v, what) = verdict(&report, info);
    assert_eq!(v, Verdict::Pass, "{what}");
    let case = report.cases.iter().find(|c| c.case.id == should).unwrap();
    assert_eq!(case.case.level, virtwire_conformance::runner::Level::Should);
    // Only where they disagree: DOMAIN_GET_INFO (domain:read, no check) has no annotation case.
    let schema = support::schema().unwrap();
    let all = virtwire_conformance::catalogue::builtin(Some(&Arc::new(schema)));
    assert!(
        all.iter()
            .all(|c| c.id != "security/readonly-acl-domain-get-info")
    );
    assert!(
        all.iter()
            .any(|c| c.id == "security/readonly-acl-connect-set-identity")
    );
}

#[test]
fn a_call_the_argument_checks_refuse_is_retried_with_a_descriptor() {
    // virDomainOpenGraphics needs a socket descriptor before its read-only check; the daemon's
    // handler refuses a call without one ("No FD available at slot 0").
    let fake = FakeRo::start(V9, |p, fds| match (p, fds) {
        (DOMAIN_OPEN_GRAPHICS, 1) => denied("virDomainOpenGraphics"),
        (DOMAIN_OPEN_GRAPHICS, _) => {
            Reply::Error(1, "internal error: No FD available at slot 0".into())
        }
        _ => Reply::Error(1, "unexpected".into()),
    });
    let id = "security/readonly-domain-open-graphics";
    let Some(report) = run(&fake, &[id]) else {
        return;
    };
    let (v, what) = verdict(&report, id);
    assert_eq!(v, Verdict::Pass, "{what}");
    assert!(what.contains("retried with a socket descriptor"), "{what}");
    assert_eq!(
        fake.fds_received.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        *fake.calls.lock().unwrap(),
        [DOMAIN_OPEN_GRAPHICS, DOMAIN_OPEN_GRAPHICS]
    );
}

#[test]
fn the_table_is_the_daemons_releases() {
    // virNodeDeviceGetAutostart refuses read-only connections in 9.0.0, not in 11.3.0.
    let unsupported = |_: i32, _: usize| {
        Reply::Error(
            3,
            "this function is not supported by the connection driver: virNodeDeviceGetAutostart"
                .into(),
        )
    };
    let id = "security/readonly-node-device-get-autostart";
    let fake = FakeRo::start(V11, move |p, f| match p {
        NODE_DEVICE_GET_AUTOSTART => unsupported(p, f),
        _ => Reply::Error(1, "unexpected".into()),
    });
    let Some(report) = run(&fake, &[id]) else {
        return;
    };
    let (v, what) = verdict(&report, id);
    assert_eq!(v, Verdict::Pass, "{what}");
    assert!(what.contains("libvirt 11.3.0"), "{what}");
    drop(fake);
    let fake = FakeRo::start(V9, unsupported);
    let (v, what) = verdict(&run(&fake, &[id]).unwrap(), id);
    assert_eq!(v, Verdict::Fail, "{what}");
    assert!(what.contains("libvirt 9.0.0"), "{what}");
}

#[test]
fn a_conditional_check_is_tried_with_its_condition_met() {
    // virDomainGetXMLDesc refuses a read-only connection only with VIR_DOMAIN_XML_SECURE: a
    // server that hands out the secure XML fails the case that sets the flag; without it the call
    // is not refused.
    let id = "security/readonly-domain-get-xml-desc-secure";
    let plain = "security/readonly-domain-get-xml-desc";
    let fake = FakeRo::start(V9, |_, _| Reply::Error(42, "Domain not found".into()));
    let Some(report) = run(&fake, &[id, plain]) else {
        return;
    };
    let (v, what) = verdict(&report, id);
    assert_eq!(v, Verdict::Fail, "{what}");
    assert!(
        what.contains("operation forbidden: virDomainGetXMLDesc with secure flag"),
        "{what}"
    );
    let (v, what) = verdict(&report, plain);
    assert_eq!(v, Verdict::Pass, "{what}");
    drop(fake);
    let fake = FakeRo::start(V9, |_, _| {
        Reply::Error(
            29,
            "operation forbidden: virDomainGetXMLDesc with secure flag".into(),
        )
    });
    let report = run(&fake, &[id, plain]).unwrap();
    let (v, what) = verdict(&report, id);
    assert_eq!(v, Verdict::Pass, "{what}");
    // The same refusal without the flag is wrong: libvirt refuses only with it.
    let (v, what) = verdict(&report, plain);
    assert_eq!(v, Verdict::Fail, "{what}");
}

/// Write `files` (path, text) under a fresh temp dir.
fn tree(files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "virtwire-derive-ro-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    for (p, text) in files {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }
    dir
}

const PROTO: &str = r#"
struct remote_domain_get_info_args { remote_nonnull_domain dom; };
struct remote_domain_get_info_ret { int x; };
struct remote_domain_destroy_args { remote_nonnull_domain dom; };
struct remote_domain_get_xml_desc_args { remote_nonnull_domain dom; unsigned int flags; };
struct remote_connect_set_identity_args { int x; };
struct remote_domain_event_lifecycle_msg { int x; };
struct remote_node_get_sev_info_args { int x; };
enum remote_procedure {
    /**
     * @generate: both
     * @acl: domain:read
     */
    REMOTE_PROC_DOMAIN_GET_INFO = 16,
    /**
     * @generate: both
     * @acl: domain:stop
     */
    REMOTE_PROC_DOMAIN_DESTROY = 12,
    /**
     * @generate: both
     * @acl: domain:read
     */
    REMOTE_PROC_DOMAIN_GET_XML_DESC = 14,
    /**
     * @generate: client
     * @acl: connect:write
     */
    REMOTE_PROC_CONNECT_SET_IDENTITY = 419,
    /**
     * @generate: both
     * @acl: none
     */
    REMOTE_PROC_DOMAIN_EVENT_LIFECYCLE = 107,
    /**
     * @generate: none
     * @acl: connect:read
     */
    REMOTE_PROC_NODE_GET_SEV_INFO = 395
};
"#;

const DOMAIN_C: &str = r#"
int
virDomainGetInfo(virDomainPtr domain)
{
    virCheckDomainReturn(domain, -1);
    return 0;
}

int virDomainDestroy(virDomainPtr domain)
{
    virCheckDomainReturn(domain, -1);
    virCheckReadOnlyGoto(domain->conn->flags, error);
    return 0;
}

char *
virDomainGetXMLDesc(virDomainPtr domain, unsigned int flags)
{
    if ((conn->flags & VIR_CONNECT_RO) &&
        (flags & VIR_DOMAIN_XML_SECURE)) {
        goto error;
    }
    return NULL;
}

int
virNodeGetSEVInfo(virConnectPtr conn)
{
    virCheckReadOnlyGoto(conn->flags, error);
    return 0;
}
"#;

const DISPATCH_C: &str = r#"
static int
remoteDispatchConnectSetIdentity(virNetServerClient *client)
{
    virConnectPtr conn = remoteGetHypervisorConn(client);
    return 0;
}

static int
remoteDispatchNodeGetSevInfo(virNetServerClient *client)
{
    virConnectPtr conn = remoteGetHypervisorConn(client);
    if (sevHelper(conn) < 0)
        return -1;
    return 0;
}

static int
sevHelper(virConnectPtr conn)
{
    return virNodeGetSEVInfo(conn);
}

static virConnectPtr
remoteGetHypervisorConn(virNetServerClient *client)
{
    return virDomainDestroy(NULL);
}
"#;

fn derive(dir: &Path) -> Option<std::process::Output> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/derive-readonly.py");
    match std::process::Command::new("python3")
        .arg(script)
        .arg(dir)
        .output()
    {
        Ok(o) => Some(o),
        Err(e) => {
            support::skip(&format!("python3 cannot run: {e}"));
            None
        }
    }
}

#[test]
fn the_derivation_script_reads_a_tiny_tree() {
    let dir = tree(&[
        ("src/remote/remote_protocol.x", PROTO),
        ("src/libvirt-domain.c", DOMAIN_C),
        ("src/remote/remote_daemon_dispatch.c", DISPATCH_C),
    ]);
    let Some(out) = derive(&dir) else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
        .collect();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r[1] == name)
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    // Sorted by number; the event message has no row.
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        ["12", "14", "16", "395", "419"],
        "{text}"
    );
    assert_eq!(
        row("DOMAIN_DESTROY")[2..5],
        ["yes", "virDomainDestroy", "src/libvirt-domain.c:12"]
    );
    assert_eq!(
        row("DOMAIN_GET_INFO")[2..5],
        ["no", "virDomainGetInfo", "src/libvirt-domain.c:3"]
    );
    let xml = row("DOMAIN_GET_XML_DESC");
    assert_eq!(xml[2..4], ["if", "virDomainGetXMLDesc"]);
    assert!(xml[5].contains("VIR_DOMAIN_XML_SECURE"), "{xml:?}");
    // Hand-written: through a static helper (fixup_name: Sev stays Sev in the handler's name,
    // the API is found by the call), never through remoteGet*Conn.
    assert_eq!(
        row("NODE_GET_SEV_INFO")[2..5],
        ["yes", "virNodeGetSEVInfo", "src/libvirt-domain.c:29"]
    );
    let id = row("CONNECT_SET_IDENTITY");
    assert_eq!(id[2..4], ["no", "remoteDispatchConnectSetIdentity"]);
    assert!(id[5].contains("calls no public API"), "{id:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_derivation_script_refuses_a_tree_it_cannot_read() {
    let dir = tree(&[
        ("src/remote/remote_protocol.x", PROTO),
        (
            "src/libvirt-domain.c",
            "int\nvirSomethingElse(void)\n{\n}\n",
        ),
        ("src/remote/remote_daemon_dispatch.c", DISPATCH_C),
    ]);
    let Some(out) = derive(&dir) else {
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("DOMAIN_DESTROY"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    let Some(out) = derive(Path::new("/nonexistent-libvirt-tree")) else {
        return;
    };
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a libvirt source tree"));
}
