//! Links the `quack` binary as a position-dependent executable on Linux x86_64 and aarch64.
//!
//! The bundled DuckDB is most of the binary, and as a position-independent executable it
//! carries some 200,000 relative relocations (vtables, function tables) that the dynamic
//! loader applies, page by page, on every start: several milliseconds of a short query, which
//! DuckDB's own CLI (linked position-dependent) does not pay. The objects stay position
//! independent (only the final link changes), and the library and tests are unaffected.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && matches!(arch.as_str(), "x86_64" | "aarch64") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
