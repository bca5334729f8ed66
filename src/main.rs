fn main() -> std::process::ExitCode {
    zookeeper_charm::main_entry()
}
