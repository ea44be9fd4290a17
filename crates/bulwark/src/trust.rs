//! `bulwark key generate`, `bulwark sign` and `bulwark verify`: cosign-compatible key-based
//! signing and verification against any registry (formats and crypto in `bulwark-trust`).
//!
//! Secrets never travel on the command line: the key password comes from
//! `BULWARK_KEY_PASSWORD` or `--key-password-stdin` (`--password-stdin` for `key generate`),
//! the registry password from `BULWARK_PASSWORD` or `--password-stdin`.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use bulwark_trust::client::{Credentials, ImageRef, Reference, RegistryClient};
use bulwark_trust::cosign::{self, SIGNATURE_ARTIFACT_TYPE, SignedPayload};
use bulwark_trust::keys::{self, KeyAlgorithm, PrivateKey, PublicKey};
use bulwark_trust::simple_signing::MAX_PAYLOAD_BYTES;
use clap::{Args, Subcommand, ValueEnum};

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Write a cosign-compatible key pair: cosign.key (encrypted with the password from
    /// BULWARK_KEY_PASSWORD or --password-stdin) and cosign.pub.
    Generate {
        /// Directory to write cosign.key and cosign.pub into.
        #[arg(long, default_value = ".")]
        output_dir: PathBuf,
        /// Read the key password from standard input instead of BULWARK_KEY_PASSWORD.
        #[arg(long)]
        password_stdin: bool,
        /// Signature algorithm.
        #[arg(long, value_enum, default_value_t = Algorithm::EcdsaP256)]
        algorithm: Algorithm,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256 (cosign's default).
    EcdsaP256,
    Ed25519,
}

/// How to reach and log in to the registry.
#[derive(Args)]
pub struct RegistryArgs {
    /// Registry user; the password comes from BULWARK_PASSWORD or --password-stdin.
    #[arg(long, short = 'u', env = "BULWARK_USERNAME")]
    username: Option<String>,
    /// Read the registry password from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Talk plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
}

#[derive(Args)]
pub struct SignArgs {
    /// Private key: cosign.key (encrypted; password from BULWARK_KEY_PASSWORD or
    /// --key-password-stdin) or an unencrypted PKCS#8 PEM.
    #[arg(long)]
    key: PathBuf,
    /// Read the key password from standard input.
    #[arg(long)]
    key_password_stdin: bool,
    /// Push the signature as an OCI 1.1 referrer (with `subject`) instead of the
    /// `sha256-<hex>.sig` tag.
    #[arg(long)]
    referrer: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    /// REGISTRY/REPOSITORY@sha256:… or REGISTRY/REPOSITORY:TAG (a tag is resolved to its
    /// digest first; the digest is what gets signed).
    image: String,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Trusted public key (PEM `PUBLIC KEY`, as in cosign.pub); repeat for several.
    #[arg(long, required = true)]
    key: Vec<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// REGISTRY/REPOSITORY[:TAG|@sha256:…] (default tag: latest).
    image: String,
}

pub async fn run_key(command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Generate {
            output_dir,
            password_stdin,
            algorithm,
        } => {
            let password = if password_stdin {
                read_stdin_secret()?
            } else {
                std::env::var("BULWARK_KEY_PASSWORD").context(
                    "set BULWARK_KEY_PASSWORD or pass --password-stdin for the key password",
                )?
            };
            let algorithm = match algorithm {
                Algorithm::EcdsaP256 => KeyAlgorithm::EcdsaP256,
                Algorithm::Ed25519 => KeyAlgorithm::Ed25519,
            };
            let pair = keys::generate_key_pair(&output_dir, password.as_bytes(), algorithm)
                .with_context(|| format!("writing a key pair into {}", output_dir.display()))?;
            println!("Private key written to {}", pair.private_key_path.display());
            println!("Public key written to {}", pair.public_key_path.display());
            println!("Key id: {}", pair.public_key.key_id()?);
            Ok(())
        }
    }
}

fn read_stdin_secret() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut s)
        .context("reading standard input")?;
    Ok(s.trim_end_matches(['\n', '\r']).to_owned())
}

fn client(
    image: &ImageRef,
    args: &RegistryArgs,
    stdin_taken: bool,
) -> anyhow::Result<RegistryClient> {
    let credentials = match &args.username {
        Some(username) => {
            let password = if args.password_stdin {
                if stdin_taken {
                    bail!("only one of --password-stdin and --key-password-stdin can read stdin");
                }
                read_stdin_secret()?
            } else {
                std::env::var("BULWARK_PASSWORD").context(
                    "--username needs a password: set BULWARK_PASSWORD or pass --password-stdin",
                )?
            };
            Some(Credentials {
                username: username.clone(),
                password,
            })
        }
        None if args.password_stdin => bail!("--password-stdin needs --username"),
        None => None,
    };
    Ok(RegistryClient::new(
        &image.registry,
        args.plain_http,
        credentials,
    )?)
}

pub async fn run_sign(args: SignArgs) -> anyhow::Result<()> {
    let image = ImageRef::parse(&args.image)?;
    let key_password = if args.key_password_stdin {
        Some(read_stdin_secret()?)
    } else {
        std::env::var("BULWARK_KEY_PASSWORD").ok()
    };
    let key = PrivateKey::from_file(&args.key, key_password.as_deref().map(str::as_bytes))
        .with_context(|| format!("reading the signing key {}", args.key.display()))?;
    let registry = client(&image, &args.registry, args.key_password_stdin)?;

    let subject = registry
        .resolve_for_push(&image)
        .await
        .with_context(|| format!("resolving {image}"))?;
    let digest = subject.digest.clone();
    let signed = cosign::sign_image(&key, &image.docker_reference(), &digest)?;
    let repo = &image.repository;

    let (artifact, target) = if args.referrer {
        let artifact = cosign::referrer_manifest(subject.descriptor(), &[signed])?;
        let target = artifact.digest.clone();
        (artifact, target)
    } else {
        // Keep the signatures already under the tag: signing adds one, as cosign does.
        let tag = cosign::signature_tag(&digest)?;
        let mut signatures = existing_signatures(&registry, repo, &tag).await?;
        if !signatures.contains(&signed) {
            signatures.push(signed);
        }
        (cosign::tag_scheme_manifest(&signatures)?, tag)
    };
    for blob in &artifact.blobs {
        registry
            .push_blob(repo, &blob.bytes)
            .await
            .with_context(|| format!("uploading blob {}", blob.descriptor.digest))?;
    }
    registry
        .put_manifest(repo, &target, artifact.media_type, &artifact.manifest)
        .await
        .context("pushing the signature manifest")?;
    let how = if args.referrer {
        format!("referrer {}", artifact.digest)
    } else {
        format!("tag {target}")
    };
    println!(
        "Signed {}/{repo}@{digest} with key {} ({how})",
        image.registry,
        key.public_key().key_id()?
    );
    Ok(())
}

/// The signatures already in the tag-scheme manifest `tag`; none if it does not exist or
/// cannot be read (it is then replaced).
async fn existing_signatures(
    registry: &RegistryClient,
    repo: &str,
    tag: &str,
) -> anyhow::Result<Vec<SignedPayload>> {
    let Some(manifest) = registry.get_manifest(repo, tag).await? else {
        return Ok(Vec::new());
    };
    let Ok(parsed) = cosign::parse_signature_manifest(&manifest.bytes) else {
        eprintln!("warning: replacing unreadable signature manifest {tag}");
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for layer in parsed.layers {
        let bytes = registry
            .get_blob(repo, &layer.descriptor.digest, MAX_PAYLOAD_BYTES)
            .await?;
        out.push(layer.with_payload(bytes)?);
    }
    Ok(out)
}

/// A signature found for the image and where it came from.
struct Candidate {
    source: String,
    signed: SignedPayload,
}

pub async fn run_verify(args: VerifyArgs) -> anyhow::Result<()> {
    let image = ImageRef::parse(&args.image)?;
    let mut trusted = Vec::new();
    for path in &args.key {
        trusted.push(
            PublicKey::from_file(path)
                .with_context(|| format!("reading the public key {}", path.display()))?,
        );
    }
    let registry = client(&image, &args.registry, false)?;
    let repo = &image.repository;
    let manifest = registry
        .resolve(&image)
        .await
        .with_context(|| format!("resolving {image}"))?;
    let digest = manifest.digest.clone();
    if let Reference::Tag(tag) = &image.reference {
        eprintln!("{}/{repo}:{tag} is {digest}", image.registry);
    }

    let mut candidates = Vec::new();
    // The tag scheme.
    let tag = cosign::signature_tag(&digest)?;
    if let Some(sig_manifest) = registry.get_manifest(repo, &tag).await? {
        collect(
            &registry,
            repo,
            &sig_manifest.bytes,
            &format!("tag {tag}"),
            None,
            &mut candidates,
        )
        .await;
    }
    // OCI 1.1 referrers.
    match registry
        .referrers(repo, &digest, Some(SIGNATURE_ARTIFACT_TYPE))
        .await
    {
        Ok(referrers) => {
            for referrer in referrers {
                match registry.get_manifest(repo, &referrer.digest).await {
                    Ok(Some(m)) => {
                        let source = format!("referrer {}", referrer.digest);
                        collect(
                            &registry,
                            repo,
                            &m.bytes,
                            &source,
                            Some(&digest),
                            &mut candidates,
                        )
                        .await;
                    }
                    Ok(None) => eprintln!("warning: referrer {} is gone", referrer.digest),
                    Err(e) => eprintln!("warning: referrer {}: {e}", referrer.digest),
                }
            }
        }
        Err(e) => eprintln!("warning: listing referrers: {e}"),
    }

    for candidate in &candidates {
        if let Ok(verdict) = cosign::verify(&candidate.signed, &trusted, &digest, repo) {
            println!(
                "Verified {}/{repo}@{digest}: signature in {} by key {} ({}), signed for {}",
                image.registry,
                candidate.source,
                verdict.key_id,
                verdict.algorithm,
                verdict.docker_reference
            );
            return Ok(());
        }
    }
    let all: Vec<SignedPayload> = candidates.into_iter().map(|c| c.signed).collect();
    match cosign::verify_any(&all, &trusted, &digest, repo) {
        Ok(_) => bail!("internal error: verification disagreed with itself"),
        Err(e) => bail!(
            "no valid signature for {}/{repo}@{digest} ({} found): {e}",
            image.registry,
            all.len()
        ),
    }
}

/// Reads one signature manifest into `out`; problems with it are reported and skipped.
async fn collect(
    registry: &RegistryClient,
    repo: &str,
    manifest: &[u8],
    source: &str,
    expected_subject: Option<&str>,
    out: &mut Vec<Candidate>,
) {
    let parsed = match cosign::parse_signature_manifest(manifest) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("warning: {source}: {e}");
            return;
        }
    };
    if let Some(expected) = expected_subject
        && parsed.subject.as_ref().map(|s| s.digest.as_str()) != Some(expected)
    {
        eprintln!("warning: {source}: subject is not {expected}; ignored");
        return;
    }
    for layer in parsed.layers {
        let fetched = registry
            .get_blob(repo, &layer.descriptor.digest, MAX_PAYLOAD_BYTES)
            .await
            .map_err(anyhow::Error::from)
            .and_then(|bytes| Ok(layer.with_payload(bytes)?));
        match fetched {
            Ok(signed) => out.push(Candidate {
                source: source.to_owned(),
                signed,
            }),
            Err(e) => eprintln!(
                "warning: {source}: payload {}: {e}",
                layer.descriptor.digest
            ),
        }
    }
}
