//! Differential tests against each ecosystem's own implementation, on
//! generated versions:
//!
//! * dpkg: `dpkg --compare-versions` (always present on Debian);
//! * PEP 440: Python's `packaging.version.Version` (`pip install packaging`);
//! * rpm: `rpm.vercmp` through `rpm --eval` (Debian package `rpm`).
//!
//! Pairs are generated in batches so that each batch costs one process
//! (dpkg: one shell running a loop). When a reference tool is missing the
//! test prints why and passes without checking.

mod common;

use std::cmp::Ordering;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use bulwark_scanner::version::Ecosystem;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Runs `program args` with `input` on stdin; stdout if it exits 0.
fn run(program: &str, args: &[&str], input: &str) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("writing to {program}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for {program}: {e}"))?;
    if !out.status.success() {
        // The last line carries the gist (e.g. Python's ModuleNotFoundError).
        let stderr = String::from_utf8_lossy(&out.stderr);
        let gist = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!(
            "{program} failed ({}): {}",
            out.status,
            gist.trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether a reference tool works, checked once; says why not.
fn available(cell: &OnceLock<bool>, what: &str, program: &str, args: &[&str], hint: &str) -> bool {
    *cell.get_or_init(|| match run(program, args, "") {
        Ok(_) => true,
        Err(e) => {
            // Straight to stderr: the test harness swallows `eprintln!` output
            // of passing tests, and a silent skip would look like a pass.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {what} reference test: {}; {hint}",
                e.trim()
            );
            false
        }
    })
}

fn ordering(token: &str) -> Option<Ordering> {
    match token {
        "lt" | "-1" => Some(Ordering::Less),
        "eq" | "0" => Some(Ordering::Equal),
        "gt" | "1" => Some(Ordering::Greater),
        _ => None,
    }
}

/// Checks our comparison of each pair against the reference's answers.
fn check_against(
    eco: Ecosystem,
    pairs: &[(String, String)],
    answers: &[&str],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        answers.len(),
        pairs.len(),
        "reference answered {:?}",
        answers
    );
    for ((a, b), answer) in pairs.iter().zip(answers) {
        let ours = eco.compare(a, b);
        match ordering(answer) {
            Some(want) => prop_assert_eq!(ours, Ok(want), "{:?} vs {:?}", a, b),
            None if answer.starts_with("invalid") => {
                prop_assert!(
                    ours.is_err(),
                    "{a:?} vs {b:?}: reference: {answer}, ours: {ours:?}"
                );
            }
            None => {
                return Err(TestCaseError::fail(format!(
                    "{a:?} vs {b:?}: unexpected reference answer {answer:?}"
                )));
            }
        }
    }
    Ok(())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Every shrink step runs the reference tool again.
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    }
}

const DPKG_LOOP: &str = r#"while read -r a b; do
  if dpkg --compare-versions "$a" lt "$b"; then echo lt
  elif dpkg --compare-versions "$a" eq "$b"; then echo eq
  else echo gt; fi
done"#;

const PACKAGING: &str = r#"
import sys
from packaging.version import Version, InvalidVersion

def parse(s):
    try:
        return Version(s)
    except InvalidVersion:
        return None

for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    va, vb = parse(a), parse(b)
    if va is None or vb is None:
        print("invalid")
    elif va < vb:
        print("lt")
    elif va == vb:
        print("eq")
    else:
        print("gt")
"#;

fn rpm_lua(pairs: &[(String, String)]) -> String {
    let list: Vec<String> = pairs
        .iter()
        .map(|(a, b)| format!("{{\"{a}\",\"{b}\"}}"))
        .collect();
    format!(
        "%{{lua: for _, p in ipairs({{{}}}) do print(rpm.vercmp(p[1], p[2]) .. \" \") end}}",
        list.join(",")
    )
}

fn dpkg_available() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    available(
        &CELL,
        "dpkg",
        "dpkg",
        &["--version"],
        "dpkg is part of every Debian system",
    )
}

fn packaging_available() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    let args = ["-c", "import packaging.version"];
    available(
        &CELL,
        "PEP 440",
        "python3",
        &args,
        "install it with `pip install packaging`",
    )
}

fn rpm_available() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    available(
        &CELL,
        "rpm",
        "rpm",
        &["--version"],
        "install it with `apt-get install -y rpm`",
    )
}

/// PEP 440 pairs: mostly well-formed, some near misses so that validity is
/// compared too.
fn pep440_pair() -> impl Strategy<Value = (String, String)> {
    let near_miss = "[0-9a-z.!+_-]{1,10}";
    prop_oneof![
        4 => common::pair(Ecosystem::Pep440),
        1 => (near_miss, common::pair(Ecosystem::Pep440)).prop_map(|(a, (b, _))| (a, b)),
        1 => (common::pair(Ecosystem::Pep440), near_miss).prop_map(|((a, _), b)| (a, b)),
    ]
}

proptest! {
    #![proptest_config(config(2))]

    #[test]
    fn dpkg_agrees_with_dpkg_compare_versions(
        pairs in vec(common::pair(Ecosystem::Dpkg), 100)
    ) {
        if !dpkg_available() {
            return Ok(());
        }
        let input: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
        let out = run("sh", &["-c", DPKG_LOOP], &input).map_err(TestCaseError::fail)?;
        let answers: Vec<&str> = out.lines().collect();
        check_against(Ecosystem::Dpkg, &pairs, &answers)?;
    }
}

proptest! {
    #![proptest_config(config(4))]

    #[test]
    fn pep440_agrees_with_python_packaging(pairs in vec(pep440_pair(), 100)) {
        if !packaging_available() {
            return Ok(());
        }
        let input: String = pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
        let out = run("python3", &["-c", PACKAGING], &input).map_err(TestCaseError::fail)?;
        let answers: Vec<&str> = out.lines().collect();
        check_against(Ecosystem::Pep440, &pairs, &answers)?;
    }

    #[test]
    fn rpm_agrees_with_rpm_vercmp(pairs in vec(common::pair(Ecosystem::Rpm), 100)) {
        if !rpm_available() {
            return Ok(());
        }
        let out = run("rpm", &["--eval", &rpm_lua(&pairs)], "").map_err(TestCaseError::fail)?;
        let answers: Vec<&str> = out.split_whitespace().collect();
        check_against(Ecosystem::Rpm, &pairs, &answers)?;
    }
}

/// Guards the harness itself: known answers must come back through the same
/// plumbing, so a broken script cannot make the differential tests vacuous.
#[test]
fn harness_reads_known_reference_answers() {
    let dpkg_pairs = [
        ("1.0~rc1", "1.0", "lt"),
        ("1.0-0", "1.0", "eq"),
        ("1:1.0", "2.0", "gt"),
    ];
    if dpkg_available() {
        let input: String = dpkg_pairs
            .iter()
            .map(|(a, b, _)| format!("{a} {b}\n"))
            .collect();
        let out = run("sh", &["-c", DPKG_LOOP], &input).unwrap();
        let want: Vec<&str> = dpkg_pairs.iter().map(|p| p.2).collect();
        assert_eq!(out.lines().collect::<Vec<_>>(), want);
    }
    let rpm_pairs = [
        ("1.0^git1".to_owned(), "1.0".to_owned()),
        ("1.0~rc1".to_owned(), "1.0".to_owned()),
        ("1.0".to_owned(), "1.0-1".to_owned()),
    ];
    if rpm_available() {
        let out = run("rpm", &["--eval", &rpm_lua(&rpm_pairs)], "").unwrap();
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            ["1", "-1", "-1"]
        );
    }
}
