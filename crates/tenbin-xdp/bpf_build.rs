//! How the C programs in `bpf/` become objects; shared by `build.rs` and the test that checks
//! the committed `bpf/prebuilt/*.o` against a fresh compile (`tests/prebuilt.rs`).
//!
//! The flags map the crate directory away (`-fdebug-compilation-dir`, `-ffile-prefix-map`),
//! so the same clang turns the same sources into the same bytes in any checkout: that is what
//! lets the test compare bytes rather than disassembly.

// Each includer uses a part.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Every program, as `bpf/NAME.bpf.c` → `NAME.bpf.o`.
pub const PROGRAMS: &[&str] = &["mux", "pass", "decap"];

/// Where the committed objects live, relative to the crate.
pub const PREBUILT_DIR: &str = "bpf/prebuilt";

/// The file beside them that names the clang that built them (`clang --version`'s first line).
pub const PREBUILT_CLANG: &str = "bpf/prebuilt/CLANG_VERSION";

/// The compiler: `$CLANG`, else `clang` on `PATH`.
pub fn clang() -> String {
    std::env::var("CLANG").unwrap_or_else(|_| "clang".into())
}

/// clang compiling `bpf/NAME.bpf.c` of the crate at `crate_dir` into `obj`.
pub fn compile_command(crate_dir: &Path, name: &str, obj: &Path) -> Command {
    let mut c = Command::new(clang());
    c.current_dir(crate_dir)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
        .arg("-I/usr/include/x86_64-linux-gnu")
        .arg("-fdebug-compilation-dir=.")
        .arg(format!("-ffile-prefix-map={}/=", crate_dir.display()))
        .arg("-c")
        .arg(format!("bpf/{name}.bpf.c"))
        .arg("-o")
        .arg(obj);
    c
}

/// A C file that includes every system header the programs use, to tell "clang cannot build
/// here" (no libbpf-dev or kernel headers) from an error in tenbin's own C.
pub const HEADER_PROBE: &str = "#include <linux/bpf.h>\n#include <linux/if_ether.h>\n\
#include <linux/in.h>\n#include <linux/ip.h>\n#include <linux/ipv6.h>\n#include <linux/tcp.h>\n\
#include <linux/udp.h>\n#include <linux/icmpv6.h>\n#include <bpf/bpf_helpers.h>\n\
#include <bpf/bpf_endian.h>\n";

/// clang preprocessing [`HEADER_PROBE`] from stdin for the BPF target.
pub fn header_probe_command() -> Command {
    let mut c = Command::new(clang());
    c.args(["-target", "bpf", "-I/usr/include/x86_64-linux-gnu"])
        .args(["-E", "-x", "c", "-o", "/dev/null", "-"]);
    c
}

/// The first line of `clang --version`, or `None` when clang cannot run.
pub fn clang_version() -> Option<String> {
    let out = Command::new(clang()).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
}
