//! Multi-replica clusters on PostgreSQL + S3: the set-up lives in `bulwark_testkit::scale`;
//! this adds starting replicas of this crate's binary.

use bulwark_testkit::TestServer;
#[allow(unused_imports)] // each test binary uses a different part
pub use bulwark_testkit::scale::{Database, backends, create_bucket, required};

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");

pub struct Cluster(bulwark_testkit::scale::Cluster);

impl Cluster {
    pub fn new(pg: &str, s3: &str) -> Cluster {
        Cluster(bulwark_testkit::scale::Cluster::new(pg, s3))
    }

    pub fn replica(&self, extra: &[(&str, &str)]) -> TestServer {
        TestServer::start_in_cluster(std::path::Path::new(BIN), &self.0, extra)
    }
}
