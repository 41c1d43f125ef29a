//! Running an organisation with the real `coachsync` binary: the example district's
//! roster imported with the server stopped and running, a dry run, a bad line, a
//! re-run.

use std::path::Path;

use anyhow::Result;
use coachsync_tests::{ServerProcess, admin};

fn roster() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/district/roster.csv")
}

fn users(data_dir: &Path) -> Result<String> {
    let output = std::process::Command::new(coachsync_tests::server_process::binary())
        .args(["admin", "user", "list", "--data-dir"])
        .arg(data_dir)
        .output()?;
    Ok(String::from_utf8(output.stdout)?)
}

#[test]
fn a_roster_imports_once_a_dry_run_and_a_bad_line_change_nothing_and_a_rerun_is_a_no_op()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let roster = roster();
    let roster = roster.to_str().unwrap();
    // A dry run of a fresh directory changes nothing.
    let summary = admin(
        dir.path(),
        &["import-roster", "--dry-run", "--org", "riverside", roster],
    )?;
    assert_eq!(
        summary,
        "9 added, 0 updated, 0 unchanged (dry run: nothing was changed)"
    );
    assert_eq!(users(dir.path())?, "");

    // With the server stopped, then through the running server.
    let summary = admin(dir.path(), &["import-roster", "--org", "riverside", roster])?;
    assert_eq!(summary, "9 added, 0 updated, 0 unchanged");
    let listed = users(dir.path())?;
    assert!(listed.contains("lena.park\tclient\triverside"), "{listed}");
    let server = ServerProcess::start_secure(dir.path(), &[])?;
    let again = admin(dir.path(), &["import-roster", "--org", "riverside", roster])?;
    assert_eq!(again, "0 added, 0 updated, 9 unchanged");

    // One bad line: every problem is named, nothing is imported.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "name,email,role,school\n\
         new.coach,new.coach@riverside.k12.example,coach,North Elementary\n\
         lena.park,lena.park@riverside.k12.example,principal,North Elementary\n",
    )?;
    let err = admin(dir.path(), &["import-roster", bad.to_str().unwrap()]).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("line 3") && err.contains("principal"), "{err}");
    assert!(
        !users(dir.path())?.contains("new.coach"),
        "nothing imported"
    );

    // A changed role is an update.
    let changed = dir.path().join("changed.csv");
    std::fs::write(
        &changed,
        "name,email,role,school\nlena.park,lena.park@riverside.k12.example,coach,North Elementary\n",
    )?;
    let summary = admin(dir.path(), &["import-roster", changed.to_str().unwrap()])?;
    assert_eq!(summary, "0 added, 1 updated, 0 unchanged");
    drop(server);
    Ok(())
}
