//! The bad-input corpus's base binary.
fn main() {
    println!("badin");
}
