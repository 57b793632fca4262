fn main() {
    println!("second");
}
