//! `tenbin check` as a user runs it: every example accepted, a broken file rejected with a
//! line/column error that names the key.

use std::path::PathBuf;
use std::process::Command;

fn tenbin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tenbin"))
}

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn check_accepts_every_example() {
    let all = examples();
    assert!(!all.is_empty());
    for path in all {
        let out = tenbin().arg("check").arg("-c").arg(&path).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(": ok"), "{stdout}");
        assert!(
            ["pool ", "dns on ", "mux on ", "agent on ", "vrrp "]
                .iter()
                .any(|t| stdout.contains(t)),
            "summary lists what the file runs: {stdout}"
        );
    }
}

#[test]
fn check_rejects_a_broken_file_with_line_column_and_key() {
    let dir = std::env::temp_dir().join(format!("tenbin-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.toml");
    std::fs::write(
        &file,
        "[[pool]]\nname = \"p\"\n\n[[pool.server]]\nname = \"a\"\naddress = \"127.0.0.1:80\"\nweigth = 2\n",
    )
    .unwrap();
    let out = tenbin().arg("check").arg("-c").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    std::fs::remove_dir_all(&dir).ok();
    assert!(!out.status.success());
    assert!(
        stderr.contains("broken.toml:7:1: key `pool[0].server[0].weigth`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("expected one of") && stderr.contains("`weight`"),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "one clear line, no backtrace: {stderr}"
    );
}

#[test]
fn check_reports_a_missing_file() {
    let out = tenbin()
        .args(["check", "-c", "/nonexistent/tenbin.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}

#[test]
fn version_prints_the_crate_version() {
    let out = tenbin().arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("tenbin {}", env!("CARGO_PKG_VERSION"))
    );
}
