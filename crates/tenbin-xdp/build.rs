//! Compiles the C BPF programs in `bpf/` with clang into OUT_DIR, or, on a machine that cannot
//! (no clang, or no libbpf-dev / kernel headers), copies the committed `bpf/prebuilt/*.o` with
//! a warning, so the rest of tenbin builds with nothing but cargo. `tests/prebuilt.rs` fails
//! when those committed objects differ from what the sources compile to.
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;

#[path = "bpf_build.rs"]
mod bpf_build;

use bpf_build::{compile_command, header_probe_command, HEADER_PROBE, PREBUILT_DIR, PROGRAMS};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-changed=bpf_build.rs");
    println!("cargo:rerun-if-env-changed=CLANG");
    let from = match cannot_compile() {
        None => {
            for name in PROGRAMS {
                let obj = out.join(format!("{name}.bpf.o"));
                let status = compile_command(&dir, name, &obj)
                    .status()
                    .unwrap_or_else(|e| panic!("running clang for bpf/{name}.bpf.c: {e}"));
                assert!(status.success(), "clang failed on bpf/{name}.bpf.c");
            }
            "compiled"
        }
        Some(why) => {
            // Once clang appears on PATH, build from source again.
            println!("cargo:rerun-if-env-changed=PATH");
            println!(
                "cargo:warning=using the committed BPF objects in {PREBUILT_DIR}: {why}; \
                 install clang and libbpf-dev to compile bpf/*.c"
            );
            for name in PROGRAMS {
                let file = format!("{name}.bpf.o");
                std::fs::copy(dir.join(PREBUILT_DIR).join(&file), out.join(&file))
                    .unwrap_or_else(|e| panic!("copying {PREBUILT_DIR}/{file}: {e}"));
            }
            "prebuilt"
        }
    };
    println!("cargo:rustc-env=TENBIN_XDP_OBJECTS={from}");
}

/// Why clang cannot build the programs here, or `None` when it can.
fn cannot_compile() -> Option<String> {
    let mut probe = match header_probe_command()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(p) => p,
        Err(e) => return Some(format!("`{}` cannot run ({e})", bpf_build::clang())),
    };
    if let Some(mut stdin) = probe.stdin.take() {
        // A write error shows up as the probe's failure below.
        let _ = stdin.write_all(HEADER_PROBE.as_bytes());
    }
    let out = probe.wait_with_output().ok()?;
    if out.status.success() {
        return None;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().find(|l| l.contains("error")).unwrap_or("");
    Some(format!("the BPF headers are missing ({})", first.trim()))
}
