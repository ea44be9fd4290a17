//! Feeds arbitrary bytes to the scanner's package-database parsers, as the file at one of the
//! paths they are routed from (chosen by the first input byte). Every parser must answer with
//! packages or an error, never panic; packages must carry a name.

#![no_main]

use bulwark_scanner::inventory;
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 12] = [
    "var/lib/dpkg/status",
    "var/lib/dpkg/status.d/base",
    "lib/apk/db/installed",
    "var/lib/rpm/Packages",
    "usr/lib/python3/site-packages/x-1.0.dist-info/METADATA",
    "app/package-lock.json",
    "app/node_modules/x/package.json",
    "app/Cargo.lock",
    "app/composer.lock",
    "usr/lib/ruby/gems/3.1.0/specifications/x-1.0.gemspec",
    "usr/local/bin/tool",
    "app/lib/x.jar",
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let path = PATHS[usize::from(first) % PATHS.len()];
    if let Some(Ok(packages)) = inventory::parse(path, body, None) {
        for p in packages {
            assert!(!p.name.is_empty(), "{path}: a package without a name");
        }
    }
});
