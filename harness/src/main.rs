fn main() {
    std::process::exit(gregor_harness::cli::main());
}
