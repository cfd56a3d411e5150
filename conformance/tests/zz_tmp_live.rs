use std::sync::Arc;
use std::time::Duration;
use virtwire_conformance::runner::{self, Config, Connector};
use virtwire_conformance::wire::{Judge, peer::Transport};
use virtwire_protocol::{Compat, Limits};

struct Tcp(String);
impl Connector for Tcp {
    fn connect(&self, t: Duration) -> Result<Box<dyn Transport>, String> {
        let a: std::net::SocketAddr = self.0.parse().unwrap();
        std::net::TcpStream::connect_timeout(&a, t)
            .map(|s| Box::new(s) as Box<dyn Transport>)
            .map_err(|e| e.to_string())
    }
    fn describe(&self) -> String {
        format!("test+tcp://{}/default", self.0)
    }
    fn open_name(&self) -> Option<String> {
        Some("test:///default".into())
    }
}

#[test]
fn live() {
    let port = std::env::var("LVPORT").unwrap();
    let cases = virtwire_conformance::catalogue::builtin();
    let cfg = Config {
        jobs: std::env::var("JOBS")
            .map(|j| j.parse().unwrap())
            .unwrap_or(1),
        ..Config::default()
    };
    let judge = Arc::new(Judge::new(
        Limits::default(),
        Compat::Libvirt,
        Some(virtwire_protocol::schema::Schema::load_default().unwrap()),
    ));
    let rep = runner::run(
        &cases,
        &cfg,
        Box::new(Tcp(format!("127.0.0.1:{port}"))),
        judge,
        None,
        &mut (),
    );
    for c in &rep.cases {
        println!(
            "{:<45} {:<11} {:>6.2}s  {} | {}",
            c.case.id,
            c.verdict.name(),
            c.duration.as_secs_f64(),
            c.expected,
            c.actual
        );
    }
    println!("{:?} in {:?}", rep.counts(), rep.duration);
}
