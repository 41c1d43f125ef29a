//! `docs/DOMAIN.md` carries the reference of every kind, written from the kinds
//! themselves; this test fails when the two differ.
//! `COACHSYNC_WRITE_DOCS=1 cargo test -p coachsync-core --test domain_docs` rewrites it.

use coachsync_core::domain::reference_markdown;

const START: &str = "<!-- reference:start";
const END: &str = "<!-- reference:end -->";

#[test]
fn the_domain_reference_in_the_docs_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DOMAIN.md");
    let doc = std::fs::read_to_string(path).expect("docs/DOMAIN.md");
    let start = doc.find(START).expect("a reference start marker");
    let body_start = start + doc[start..].find('\n').expect("a marker line") + 1;
    let end = doc.find(END).expect("a reference end marker");
    let current = &doc[body_start..end];
    let want = reference_markdown();
    if current != want {
        if std::env::var_os("COACHSYNC_WRITE_DOCS").is_some() {
            let updated = format!("{}{want}{}", &doc[..body_start], &doc[end..]);
            std::fs::write(path, updated).expect("writing docs/DOMAIN.md");
            return;
        }
        panic!(
            "docs/DOMAIN.md's reference is out of date; run \
             COACHSYNC_WRITE_DOCS=1 cargo test -p coachsync-core --test domain_docs"
        );
    }
}
