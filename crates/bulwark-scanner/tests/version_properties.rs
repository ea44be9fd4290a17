//! Order laws for every ecosystem's comparator, on generated versions:
//! reflexivity, antisymmetry, transitivity and substitutability of equal
//! versions; plus robustness on arbitrary and oversized input.

mod common;

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use bulwark_scanner::version::Ecosystem;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Compares every pair once, then checks the laws on the matrix.
fn check_order_laws(eco: Ecosystem, versions: &[String]) -> Result<(), TestCaseError> {
    let mut m = Vec::with_capacity(versions.len());
    for a in versions {
        let mut row = Vec::with_capacity(versions.len());
        for b in versions {
            let ord = eco
                .compare(a, b)
                .map_err(|e| TestCaseError::fail(format!("generated an invalid version: {e}")))?;
            row.push(ord);
        }
        m.push(row);
    }
    let at = |i: usize, j: usize| m[i][j];
    let n = versions.len();
    let v = |i: usize| &versions[i];
    for i in 0..n {
        prop_assert_eq!(at(i, i), Ordering::Equal, "{} not equal to itself", v(i));
        for j in 0..n {
            prop_assert_eq!(
                at(i, j),
                at(j, i).reverse(),
                "antisymmetry: {} vs {}",
                v(i),
                v(j)
            );
            for k in 0..n {
                let (ij, jk, ik) = (at(i, j), at(j, k), at(i, k));
                if ij.is_le() && jk.is_le() {
                    prop_assert!(
                        ik.is_le(),
                        "transitivity: {} <= {} <= {} but {:?}",
                        v(i),
                        v(j),
                        v(k),
                        ik
                    );
                    if ij.is_lt() || jk.is_lt() {
                        prop_assert!(
                            ik.is_lt(),
                            "strict transitivity: {} {:?} {} {:?} {} but {:?}",
                            v(i),
                            ij,
                            v(j),
                            jk,
                            v(k),
                            ik
                        );
                    }
                }
                if ij.is_eq() {
                    prop_assert_eq!(
                        ik,
                        jk,
                        "{} == {} but they differ against {}",
                        v(i),
                        v(j),
                        v(k)
                    );
                }
            }
        }
    }
    Ok(())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

macro_rules! order_law_tests {
    ($($name:ident => $eco:expr),* $(,)?) => {
        proptest! {
            #![proptest_config(config(256))]
            $(
                #[test]
                fn $name(versions in common::family($eco, 2..9)) {
                    check_order_laws($eco, &versions)?;
                }
            )*
        }
    };
}

order_law_tests! {
    dpkg_is_a_total_order => Ecosystem::Dpkg,
    rpm_is_a_total_order => Ecosystem::Rpm,
    apk_is_a_total_order => Ecosystem::Apk,
    semver_is_a_total_order => Ecosystem::SemVer,
    pep440_is_a_total_order => Ecosystem::Pep440,
    go_is_a_total_order => Ecosystem::Go,
    maven_is_a_total_order => Ecosystem::Maven,
    rubygems_is_a_total_order => Ecosystem::RubyGems,
}

/// Characters that occur in versions of some ecosystem, to reach deep into
/// the parsers with near-miss input.
const VERSIONISH: &str = "[0-9a-zA-Z.~^_+:!-]{0,16}";

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_input_never_panics(a in any::<String>(), b in VERSIONISH) {
        for eco in Ecosystem::ALL {
            let _ = eco.compare(&a, &b);
            let _ = eco.compare(&b, &a);
        }
    }

    #[test]
    fn near_miss_input_is_antisymmetric(a in VERSIONISH, b in VERSIONISH) {
        for eco in Ecosystem::ALL {
            match (eco.compare(&a, &b), eco.compare(&b, &a)) {
                (Ok(x), Ok(y)) => prop_assert_eq!(x, y.reverse(), "{} {:?} vs {:?}", eco, a, b),
                (Err(_), Err(_)) => {}
                (x, y) => {
                    return Err(TestCaseError::fail(format!(
                        "{eco}: {a:?} vs {b:?} gave {x:?} but reversed {y:?}"
                    )));
                }
            }
        }
    }
}

#[test]
fn oversized_input_is_handled_in_linear_time() {
    const N: usize = 200_000;
    let inputs = [
        "9".repeat(N),
        "1.".repeat(N) + "1",
        "0.".repeat(N) + "a",
        "1.".repeat(N) + "0",
        "1-".repeat(N) + "1",
        "a1".repeat(N),
        "1.0".to_owned() + &"~".repeat(N),
        "1".to_owned() + &".0".repeat(N) + "-1",
        "1".to_owned() + &"_alpha".repeat(N),
        "1.0+".to_owned() + &"a.".repeat(N) + "a",
        "1.0.0-".to_owned() + &"a.".repeat(N) + "a",
    ];
    for eco in Ecosystem::ALL {
        for input in &inputs {
            let start = Instant::now();
            let _ = eco.compare(input, input);
            let _ = eco.compare(input, "1.0");
            let elapsed = start.elapsed();
            assert!(
                elapsed < Duration::from_secs(5),
                "{eco}: {}-byte input took {elapsed:?}",
                input.len()
            );
        }
    }
}

#[test]
fn huge_numbers_compare_by_magnitude() {
    let small = format!("1.{}", "9".repeat(300));
    let large = format!("1.1{}", "0".repeat(300));
    for eco in [
        Ecosystem::Dpkg,
        Ecosystem::Rpm,
        Ecosystem::Apk,
        Ecosystem::Pep440,
        Ecosystem::Maven,
        Ecosystem::RubyGems,
    ] {
        assert_eq!(eco.compare(&small, &large), Ok(Ordering::Less), "{eco}");
    }
    for eco in [Ecosystem::SemVer, Ecosystem::Go] {
        let small = format!("{small}.0");
        let large = format!("{large}.0");
        assert_eq!(eco.compare(&small, &large), Ok(Ordering::Less), "{eco}");
    }
}
