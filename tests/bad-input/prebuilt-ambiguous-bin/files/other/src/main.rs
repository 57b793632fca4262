fn main() {
    println!("the other badin");
}
