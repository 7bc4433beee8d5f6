//! The migrations are embedded by `sqlx::migrate!`, which cargo does not know reads
//! them: without this, a new migration file would not reach the binary until some
//! source file of this crate changed.
fn main() {
    println!("cargo:rerun-if-changed=../schema/postgres");
    println!("cargo:rerun-if-changed=../schema/sqlite");
}
