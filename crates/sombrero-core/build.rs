//! Rebuilds the crate when the repository's `ansible/` tree changes: `configure` embeds it
//! (`include_dir!`), and the macro cannot tell Cargo which files it read on stable Rust.

fn main() {
    println!("cargo:rerun-if-changed=../../ansible");
}
