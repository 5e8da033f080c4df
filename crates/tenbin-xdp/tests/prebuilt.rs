//! The committed `bpf/prebuilt/*.o` (what a machine without clang builds tenbin with) are
//! exactly what `bpf/*.c` compiles to: rebuilt here with the flags `build.rs` uses, compared
//! byte for byte. After changing the C, refresh them with
//! `TENBIN_BLESS_BPF=1 cargo test -p tenbin-xdp --test prebuilt`.

#[path = "../bpf_build.rs"]
mod bpf_build;

use std::path::Path;

use bpf_build::{compile_command, PREBUILT_CLANG, PREBUILT_DIR, PROGRAMS};
use tenbin_testkit::skip;

#[test]
fn committed_objects_match_a_fresh_compile() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(version) = bpf_build::clang_version() else {
        return skip::skip("needs clang (scripts/install-deps installs it)");
    };
    let bless = std::env::var("TENBIN_BLESS_BPF").is_ok_and(|v| v == "1");
    let pinned = std::fs::read_to_string(dir.join(PREBUILT_CLANG)).unwrap();
    if !bless && pinned.trim() != version {
        // Another clang emits other bytes for the same C: only the pinned one can judge.
        return skip::skip(&format!(
            "the objects were built by `{}`, this is `{version}`",
            pinned.trim()
        ));
    }
    let out = std::env::temp_dir().join(format!("tenbin-bpf-prebuilt-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut stale = Vec::new();
    for name in PROGRAMS {
        let fresh = out.join(format!("{name}.bpf.o"));
        let status = compile_command(dir, name, &fresh).status().unwrap();
        assert!(status.success(), "clang failed on bpf/{name}.bpf.c");
        let committed = dir.join(PREBUILT_DIR).join(format!("{name}.bpf.o"));
        let fresh_bytes = std::fs::read(&fresh).unwrap();
        if bless {
            std::fs::write(&committed, &fresh_bytes).unwrap();
        } else if std::fs::read(&committed).ok().as_deref() != Some(&fresh_bytes[..]) {
            stale.push(committed.display().to_string());
        }
    }
    if bless {
        std::fs::write(dir.join(PREBUILT_CLANG), format!("{version}\n")).unwrap();
    }
    std::fs::remove_dir_all(&out).ok();
    assert!(
        stale.is_empty(),
        "stale prebuilt BPF objects (bpf/*.c changed since they were built): {stale:?}; \
         refresh them with TENBIN_BLESS_BPF=1 cargo test -p tenbin-xdp --test prebuilt"
    );
}

/// The objects compiled into this build carry the programs the loader asks for: a cheap check
/// that does not need root, whichever way `build.rs` obtained them.
#[test]
fn embedded_objects_are_bpf_elf_with_their_programs() {
    use tenbin_xdp::loader::{DECAP_OBJ, MUX_OBJ, PASS_OBJ};
    for (obj, section) in [
        (MUX_OBJ, "tenbin_mux"),
        (DECAP_OBJ, "tenbin_decap"),
        (PASS_OBJ, "tenbin_pass"),
    ] {
        assert_eq!(&obj[..4], b"\x7fELF");
        // e_machine 247 = EM_BPF.
        assert_eq!(u16::from_le_bytes([obj[18], obj[19]]), 247);
        assert!(
            obj.windows(section.len()).any(|w| w == section.as_bytes()),
            "no {section} symbol"
        );
    }
}
