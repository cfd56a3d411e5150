//! The other programs: admin (libvirtd's admin socket), log (virtlogd), lock (virtlockd).

use virtwire_protocol::schema::Schema;

use crate::runner::Case;

/// The cases for the admin, log and lock programs of `schema`.
pub fn cases(_schema: &Schema) -> Vec<Case> {
    Vec::new()
}
