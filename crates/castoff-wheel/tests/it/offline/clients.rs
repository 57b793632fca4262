//! The wheels as clients receive them, where no client is needed: two builds from the same
//! binary are the same bytes (the rest of the client checks are in `live::clients`).

use crate::support::{Scratch, Variant, greeter_wheel};

#[test]
fn two_builds_are_byte_identical() {
    let first = Scratch::new("reproducible-1");
    let second = Scratch::new("reproducible-2");
    let one = greeter_wheel(Variant::Dynamic, first.path());
    let two = greeter_wheel(Variant::Dynamic, second.path());
    assert_eq!(one.file_name, two.file_name);
    assert_eq!(one.sha256, two.sha256);
    assert_eq!(
        std::fs::read(&one.path).unwrap(),
        std::fs::read(&two.path).unwrap()
    );
}
