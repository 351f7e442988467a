fn main() {
    let greeting = if cfg!(feature = "loud") { "HELLO FROM RUST" } else { "hello from rust" };
    println!("{greeting}");
}
