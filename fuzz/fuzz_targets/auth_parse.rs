//! Token-request scopes and presented credentials: `parse_scopes` on arbitrary text (and the
//! round trip of what it accepts), `ApiToken::parse`, and `TokenIssuer::verify` /
//! `verify_refresh` on arbitrary "JWTs" — none may panic, and no forged input may verify.

#![no_main]

use std::sync::LazyLock;

use bulwark_auth::scope::{Scope, parse_scopes};
use bulwark_auth::{ApiToken, SigningKey, TokenIssuer};
use libfuzzer_sys::fuzz_target;

static ISSUER: LazyLock<Option<TokenIssuer>> =
    LazyLock::new(|| SigningKey::generate().ok().map(|k| TokenIssuer::new("fuzz", k)));

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(scopes) = parse_scopes(text.split('\n')) {
        for scope in scopes {
            let printed = scope.to_string();
            let again = Scope::parse(&printed).expect("a printed scope parses");
            assert_eq!(again, scope, "{printed:?}");
        }
    }
    if let Ok(token) = ApiToken::parse(&text) {
        assert!(text.starts_with(ApiToken::PREFIX));
        assert!(!token.id().is_empty());
    }
    if let Some(issuer) = ISSUER.as_ref() {
        // Nothing the fuzzer writes carries this issuer's signature.
        assert!(issuer.verify(&text, "fuzz", 1_800_000_000).is_err());
        assert!(issuer.verify_refresh(&text, 1_800_000_000).is_err());
    }
});
