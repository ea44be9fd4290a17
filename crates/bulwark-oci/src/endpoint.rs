//! `Endpoint::parse`: turns a method, path and query under `/v2/` into a typed endpoint.
//! Paths are matched from the right so repository names of any depth need no route table.

use crate::digest::{Digest, DigestError};
use crate::name::{NameError, Reference, RepoName};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Patch,
    Delete,
    Other,
}

impl Method {
    pub fn from_str_upper(m: &str) -> Method {
        match m {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => Method::Other,
        }
    }
}

/// Pagination parameters of `_catalog` and `tags/list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub n: Option<usize>,
    pub last: Option<String>,
}

/// Cross-repository mount request (`mount=<digest>[&from=<repo>]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub digest: Digest,
    pub from: Option<RepoName>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Base,
    Catalog {
        page: Page,
    },
    ListTags {
        name: RepoName,
        page: Page,
    },
    GetManifest {
        name: RepoName,
        reference: Reference,
        head: bool,
    },
    PutManifest {
        name: RepoName,
        reference: Reference,
    },
    DeleteManifest {
        name: RepoName,
        reference: Reference,
    },
    GetBlob {
        name: RepoName,
        digest: Digest,
        head: bool,
    },
    DeleteBlob {
        name: RepoName,
        digest: Digest,
    },
    StartUpload {
        name: RepoName,
        digest: Option<Digest>,
        mount: Option<Mount>,
    },
    UploadStatus {
        name: RepoName,
        id: String,
    },
    PatchUpload {
        name: RepoName,
        id: String,
    },
    PutUpload {
        name: RepoName,
        id: String,
        digest: Digest,
    },
    CancelUpload {
        name: RepoName,
        id: String,
    },
    Referrers {
        name: RepoName,
        digest: Digest,
        artifact_type: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("no such endpoint")]
    NotFound,
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("invalid query parameter {0}")]
    BadQuery(&'static str),
    #[error("invalid pagination number")]
    BadPagination,
}

impl From<DigestError> for EndpointError {
    fn from(e: DigestError) -> Self {
        EndpointError::Name(NameError::Digest(e))
    }
}

const MAX_UPLOAD_ID_LEN: usize = 128;

impl Endpoint {
    /// The repository this endpoint acts on, if any.
    pub fn repository(&self) -> Option<&RepoName> {
        match self {
            Endpoint::Base | Endpoint::Catalog { .. } => None,
            Endpoint::ListTags { name, .. }
            | Endpoint::GetManifest { name, .. }
            | Endpoint::PutManifest { name, .. }
            | Endpoint::DeleteManifest { name, .. }
            | Endpoint::GetBlob { name, .. }
            | Endpoint::DeleteBlob { name, .. }
            | Endpoint::StartUpload { name, .. }
            | Endpoint::UploadStatus { name, .. }
            | Endpoint::PatchUpload { name, .. }
            | Endpoint::PutUpload { name, .. }
            | Endpoint::CancelUpload { name, .. }
            | Endpoint::Referrers { name, .. } => Some(name),
        }
    }

    /// `path` is the raw (percent-encoded) request path, `query` the raw query string.
    pub fn parse(method: Method, path: &str, query: Option<&str>) -> Result<Self, EndpointError> {
        let rest = path.strip_prefix("/v2").ok_or(EndpointError::NotFound)?;
        if rest.is_empty() || rest == "/" {
            return match method {
                Method::Get | Method::Head => Ok(Endpoint::Base),
                _ => Err(EndpointError::MethodNotAllowed),
            };
        }
        let rest = rest.strip_prefix('/').ok_or(EndpointError::NotFound)?;
        let q = Query::parse(query.unwrap_or(""));
        if rest == "_catalog" {
            return match method {
                Method::Get => Ok(Endpoint::Catalog { page: q.page()? }),
                _ => Err(EndpointError::MethodNotAllowed),
            };
        }
        let segs: Vec<std::borrow::Cow<'_, str>> = rest
            .split('/')
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy())
            .collect();
        let n = segs.len();
        let seg = |i: usize| segs.get(i).map(|s| s.as_ref()).unwrap_or("");
        let name_of = |k: usize| -> Result<RepoName, EndpointError> {
            let parts: Vec<&str> = segs.iter().take(k).map(|s| s.as_ref()).collect();
            Ok(RepoName::parse(&parts.join("/"))?)
        };
        if n < 2 {
            return Err(EndpointError::NotFound);
        }
        let last = seg(n - 1);
        let prev = seg(n - 2);

        if n >= 3 && prev == "tags" && last == "list" {
            let name = name_of(n - 2)?;
            return match method {
                Method::Get => Ok(Endpoint::ListTags {
                    name,
                    page: q.page()?,
                }),
                _ => Err(EndpointError::MethodNotAllowed),
            };
        }
        if n >= 3 && prev == "manifests" {
            let name = name_of(n - 2)?;
            let reference = Reference::parse(last)?;
            return match method {
                Method::Get | Method::Head => Ok(Endpoint::GetManifest {
                    name,
                    reference,
                    head: method == Method::Head,
                }),
                Method::Put => Ok(Endpoint::PutManifest { name, reference }),
                Method::Delete => Ok(Endpoint::DeleteManifest { name, reference }),
                _ => Err(EndpointError::MethodNotAllowed),
            };
        }
        if n >= 3 && prev == "referrers" {
            let name = name_of(n - 2)?;
            let digest = Digest::parse(last)?;
            return match method {
                Method::Get => Ok(Endpoint::Referrers {
                    name,
                    digest,
                    artifact_type: q.get("artifactType").map(str::to_owned),
                }),
                _ => Err(EndpointError::MethodNotAllowed),
            };
        }
        // `<name>/blobs/uploads` starts an upload; anything else after `blobs/` must be a digest.
        // Upload ids never contain ':', so `<name>/blobs/uploads/<id>` is never read as a blob
        // of a repository whose name ends in `/blobs`.
        if n >= 3 && prev == "blobs" && last != "uploads" && !last.is_empty() {
            let name = name_of(n - 2)?;
            let digest = Digest::parse(last)?;
            return match method {
                Method::Get | Method::Head => Ok(Endpoint::GetBlob {
                    name,
                    digest,
                    head: method == Method::Head,
                }),
                Method::Delete => Ok(Endpoint::DeleteBlob { name, digest }),
                _ => Err(EndpointError::MethodNotAllowed),
            };
        }
        let start_upload_at = if prev == "blobs" && last == "uploads" {
            Some(n - 2)
        } else if n >= 4 && seg(n - 3) == "blobs" && prev == "uploads" && last.is_empty() {
            Some(n - 3)
        } else {
            None
        };
        if let Some(k) = start_upload_at.filter(|&k| k >= 1) {
            let name = name_of(k)?;
            return match method {
                Method::Post => {
                    let mount = match q.get("mount") {
                        Some(m) => Some(Mount {
                            digest: Digest::parse(m)?,
                            from: q.get("from").map(RepoName::parse).transpose()?,
                        }),
                        None => None,
                    };
                    Ok(Endpoint::StartUpload {
                        name,
                        digest: q.get("digest").map(Digest::parse).transpose()?,
                        mount,
                    })
                }
                _ => Err(EndpointError::MethodNotAllowed),
            };
        }
        if n >= 4 && seg(n - 3) == "blobs" && prev == "uploads" {
            let name = name_of(n - 3)?;
            let valid_id = last.len() <= MAX_UPLOAD_ID_LEN
                && last
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_id {
                return Err(EndpointError::NotFound);
            }
            let id = last.to_owned();
            return match method {
                Method::Get => Ok(Endpoint::UploadStatus { name, id }),
                Method::Patch => Ok(Endpoint::PatchUpload { name, id }),
                Method::Put => {
                    let digest = q
                        .get("digest")
                        .ok_or(EndpointError::BadQuery("digest"))
                        .and_then(|d| Ok(Digest::parse(d)?))?;
                    Ok(Endpoint::PutUpload { name, id, digest })
                }
                Method::Delete => Ok(Endpoint::CancelUpload { name, id }),
                _ => Err(EndpointError::MethodNotAllowed),
            };
        }
        Err(EndpointError::NotFound)
    }
}

struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Self {
        Query(form_urlencoded::parse(q.as_bytes()).into_owned().collect())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn page(&self) -> Result<Page, EndpointError> {
        let n = match self.get("n") {
            None => None,
            Some(v) => Some(
                v.parse::<usize>()
                    .map_err(|_| EndpointError::BadPagination)?,
            ),
        };
        Ok(Page {
            n,
            last: self.get("last").map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn p(m: Method, path: &str) -> Result<Endpoint, EndpointError> {
        let (path, q) = match path.split_once('?') {
            Some((a, b)) => (a, Some(b)),
            None => (path, None),
        };
        Endpoint::parse(m, path, q)
    }
    fn name(s: &str) -> RepoName {
        RepoName::parse(s).unwrap()
    }
    fn dg() -> Digest {
        Digest::parse(D).unwrap()
    }

    #[test]
    fn base_and_catalog() {
        assert_eq!(p(Method::Get, "/v2/"), Ok(Endpoint::Base));
        assert_eq!(p(Method::Head, "/v2"), Ok(Endpoint::Base));
        assert_eq!(
            p(Method::Post, "/v2/"),
            Err(EndpointError::MethodNotAllowed)
        );
        assert_eq!(
            p(Method::Get, "/v2/_catalog?n=10&last=a%2Fb"),
            Ok(Endpoint::Catalog {
                page: Page {
                    n: Some(10),
                    last: Some("a/b".into())
                }
            })
        );
        assert_eq!(
            p(Method::Get, "/v2/_catalog?n=x"),
            Err(EndpointError::BadPagination)
        );
        assert_eq!(p(Method::Get, "/v3/"), Err(EndpointError::NotFound));
        assert_eq!(p(Method::Get, "/v2x"), Err(EndpointError::NotFound));
    }

    #[test]
    fn manifests_with_deep_names() {
        assert_eq!(
            p(Method::Get, "/v2/a/b/c/manifests/latest"),
            Ok(Endpoint::GetManifest {
                name: name("a/b/c"),
                reference: Reference::parse("latest").unwrap(),
                head: false
            })
        );
        // A repository may itself contain a "manifests" component.
        assert_eq!(
            p(Method::Put, "/v2/x/manifests/y/manifests/v1"),
            Ok(Endpoint::PutManifest {
                name: name("x/manifests/y"),
                reference: Reference::parse("v1").unwrap()
            })
        );
        assert_eq!(
            p(
                Method::Delete,
                &format!("/v2/r/manifests/{}", D.replace(':', "%3A"))
            ),
            Ok(Endpoint::DeleteManifest {
                name: name("r"),
                reference: Reference::Digest(dg())
            })
        );
        assert!(matches!(
            p(Method::Head, "/v2/r/manifests/latest"),
            Ok(Endpoint::GetManifest { head: true, .. })
        ));
        assert!(matches!(
            p(Method::Get, "/v2/R/manifests/latest"),
            Err(EndpointError::Name(NameError::Name(_)))
        ));
        assert!(matches!(
            p(Method::Get, "/v2/r/manifests/-bad"),
            Err(EndpointError::Name(NameError::Tag(_)))
        ));
        assert!(matches!(
            p(Method::Get, "/v2/r/manifests/sha256:12"),
            Err(EndpointError::Name(NameError::Digest(_)))
        ));
        assert_eq!(
            p(Method::Post, "/v2/r/manifests/x"),
            Err(EndpointError::MethodNotAllowed)
        );
        assert_eq!(
            p(Method::Get, "/v2/manifests/x"),
            Err(EndpointError::NotFound)
        );
    }

    #[test]
    fn blobs_and_uploads() {
        assert_eq!(
            p(Method::Head, &format!("/v2/a/b/blobs/{D}")),
            Ok(Endpoint::GetBlob {
                name: name("a/b"),
                digest: dg(),
                head: true
            })
        );
        assert_eq!(
            p(Method::Delete, &format!("/v2/a/blobs/{D}")),
            Ok(Endpoint::DeleteBlob {
                name: name("a"),
                digest: dg()
            })
        );
        for path in ["/v2/a/b/blobs/uploads/", "/v2/a/b/blobs/uploads"] {
            assert_eq!(
                p(Method::Post, path),
                Ok(Endpoint::StartUpload {
                    name: name("a/b"),
                    digest: None,
                    mount: None
                }),
                "{path}"
            );
        }
        assert_eq!(
            p(
                Method::Post,
                &format!("/v2/a/blobs/uploads/?mount={D}&from=x%2Fy")
            ),
            Ok(Endpoint::StartUpload {
                name: name("a"),
                digest: None,
                mount: Some(Mount {
                    digest: dg(),
                    from: Some(name("x/y"))
                })
            })
        );
        assert_eq!(
            p(Method::Post, &format!("/v2/a/blobs/uploads/?digest={D}")),
            Ok(Endpoint::StartUpload {
                name: name("a"),
                digest: Some(dg()),
                mount: None
            })
        );
        assert_eq!(
            p(Method::Patch, "/v2/a/blobs/uploads/0b5e-11"),
            Ok(Endpoint::PatchUpload {
                name: name("a"),
                id: "0b5e-11".into()
            })
        );
        assert_eq!(
            p(
                Method::Put,
                &format!("/v2/a/blobs/uploads/u1?digest={}", D.replace(':', "%3A"))
            ),
            Ok(Endpoint::PutUpload {
                name: name("a"),
                id: "u1".into(),
                digest: dg()
            })
        );
        assert_eq!(
            p(Method::Put, "/v2/a/blobs/uploads/u1"),
            Err(EndpointError::BadQuery("digest"))
        );
        assert!(matches!(
            p(Method::Get, "/v2/a/blobs/uploads/u1"),
            Ok(Endpoint::UploadStatus { .. })
        ));
        assert!(matches!(
            p(Method::Delete, "/v2/a/blobs/uploads/u1"),
            Ok(Endpoint::CancelUpload { .. })
        ));
        assert_eq!(
            p(Method::Get, "/v2/a/blobs/uploads/u%2E1"),
            Err(EndpointError::NotFound)
        );
        // A repository named `x/blobs/uploads` can still be read from.
        assert_eq!(
            p(Method::Get, &format!("/v2/x/blobs/uploads/blobs/{D}")),
            Ok(Endpoint::GetBlob {
                name: name("x/blobs/uploads"),
                digest: dg(),
                head: false
            })
        );
        assert!(matches!(
            p(Method::Get, "/v2/a/blobs/notadigest"),
            Err(EndpointError::Name(NameError::Digest(_)))
        ));
        assert!(matches!(
            p(Method::Get, "/v2/a/blobs/sha256:zz"),
            Err(EndpointError::Name(NameError::Digest(_)))
        ));
    }

    #[test]
    fn tags_and_referrers() {
        assert_eq!(
            p(Method::Get, "/v2/a/b/tags/list?n=2&last=v1"),
            Ok(Endpoint::ListTags {
                name: name("a/b"),
                page: Page {
                    n: Some(2),
                    last: Some("v1".into())
                }
            })
        );
        assert_eq!(
            p(
                Method::Get,
                &format!("/v2/a/referrers/{D}?artifactType=application%2Fvnd.x%2Bjson")
            ),
            Ok(Endpoint::Referrers {
                name: name("a"),
                digest: dg(),
                artifact_type: Some("application/vnd.x+json".into())
            })
        );
        assert_eq!(
            p(Method::Delete, "/v2/a/tags/list"),
            Err(EndpointError::MethodNotAllowed)
        );
    }

    proptest! {
        #[test]
        fn never_panics(path in "/v2(/[a-z0-9:._%-]{0,12}){0,8}/?", q in "[a-z=&%0-9:]{0,30}") {
            for m in [Method::Get, Method::Head, Method::Put, Method::Post, Method::Patch, Method::Delete, Method::Other] {
                let _ = Endpoint::parse(m, &path, Some(&q));
            }
        }

        #[test]
        fn manifest_paths_round_trip(parts in prop::collection::vec("[a-z0-9]{1,6}", 1..6), tag in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}") {
            let repo = parts.join("/");
            let ep = Endpoint::parse(Method::Get, &format!("/v2/{repo}/manifests/{tag}"), None).unwrap();
            prop_assert_eq!(ep.repository().map(|r| r.as_str().to_owned()), Some(repo));
        }
    }
}
