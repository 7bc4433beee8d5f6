//! What the AWS clients share (S3 for receipts, KMS for the master key): the region, and
//! the static credentials of the configuration or else the AWS default chain.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

use crate::config::Secret;

pub async fn sdk_config(region: &str, credentials: Option<&(String, Secret)>) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_string()));
    if let Some((id, secret)) = credentials {
        loader = loader.credentials_provider(Credentials::new(
            id,
            secret.expose(),
            None,
            None,
            "expensewise-config",
        ));
    }
    loader.load().await
}
