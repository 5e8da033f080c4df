//! Compiles the C BPF programs in `bpf/` with clang into OUT_DIR.
use std::path::PathBuf;
use std::process::Command;

const PROGRAMS: &[&str] = &["mux", "pass", "decap"];

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=bpf");
    for name in PROGRAMS {
        let src = format!("bpf/{name}.bpf.c");
        let obj = out.join(format!("{name}.bpf.o"));
        let status = Command::new(std::env::var("CLANG").unwrap_or_else(|_| "clang".into()))
            .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
            .arg("-I/usr/include/x86_64-linux-gnu")
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| {
                panic!("running clang for {src} (install clang and libbpf-dev): {e}")
            });
        assert!(status.success(), "clang failed on {src}");
    }
}
