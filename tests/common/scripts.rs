//! Running the external clients (kcat, the Python and JavaScript check scripts) from the Rust
//! tests. A missing client is a test failure that says how to install it (scripts/test.sh),
//! never a silent pass.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Repository root (the `ringlet` package lives at the workspace root).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Python interpreter: `$PYTHON` or `python3`.
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs `command` (with optional stdin), prints what it printed, and returns the output.
/// Panics with an install hint if the program does not exist.
pub fn run(command: &mut Command, stdin: Option<&[u8]>) -> Output {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("cannot run {program}: {err}. Install the test clients with scripts/test.sh")
        });
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(bytes).expect("write to the client's stdin");
    }
    let output = child.wait_with_output().expect("wait for client");
    println!(
        "$ {:?}\n{}",
        command,
        String::from_utf8_lossy(&output.stdout)
    );
    if !output.stderr.is_empty() {
        println!("(stderr)\n{}", String::from_utf8_lossy(&output.stderr));
    }
    output
}

/// Runs `command` and panics unless it exits 0.
pub fn run_ok(command: &mut Command, stdin: Option<&[u8]>) -> Output {
    let output = run(command, stdin);
    assert!(
        output.status.success(),
        "{:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        command,
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs one of the Python check scripts in tests/python against `bootstrap`.
pub fn run_python_check(script: &str, bootstrap: &str, extra_args: &[&str]) -> Output {
    let path = repo_root().join("tests/python").join(script);
    run_ok(
        Command::new(python())
            .arg(&path)
            .args(["--bootstrap", bootstrap])
            .args(extra_args)
            .current_dir(repo_root()),
        None,
    )
}

/// Runs one of the Node.js check scripts in tests/js against `bootstrap`.
pub fn run_node_check(script: &str, bootstrap: &str, extra_args: &[&str]) -> Output {
    let js_dir = repo_root().join("tests/js");
    assert_installed(
        &js_dir.join("node_modules/kafkajs/package.json"),
        "kafkajs (npm ci in tests/js)",
    );
    run_ok(
        Command::new("node")
            .arg(js_dir.join(script))
            .args(["--bootstrap", bootstrap])
            .args(extra_args)
            .current_dir(&js_dir),
        None,
    )
}

fn assert_installed(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "{what} is not installed ({} missing): run scripts/test.sh, which installs the test clients",
        path.display()
    );
}
