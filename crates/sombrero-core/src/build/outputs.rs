//! `deployments/outputs/packer-outputs.json`: stage 1's hand-over to stage 2.
//!
//! Why the runbook's keys: deploy (and anything an operator wrote against the runbook)
//! reads `template_id` from it; `packer_version` carries the builder's version, and
//! `builder: "sombrero"` says which builder that is.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::BuildError;
use super::{BuildRequest, TemplateMetadata};

/// The file name, in the outputs directory.
pub const PACKER_OUTPUTS: &str = "packer-outputs.json";

/// The file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackerOutputs {
    /// A string, as in the runbook's example.
    pub template_id: String,
    pub template_name: String,
    pub build_time: String,
    pub docker_version: Option<String>,
    pub packer_version: String,
    pub builder: String,
    pub node: String,
    pub base_image: String,
    pub base_image_sha256: Option<String>,
    pub os: String,
    pub build: String,
}

/// Writes the file (atomically) and returns its path.
pub(crate) fn write(
    request: &BuildRequest,
    metadata: &TemplateMetadata,
) -> Result<PathBuf, BuildError> {
    let outputs = PackerOutputs {
        template_id: request.template_id.to_string(),
        template_name: request.template_name.clone(),
        build_time: metadata.build_time.clone(),
        docker_version: metadata.docker_version.clone(),
        packer_version: metadata.sombrero_version.clone(),
        builder: "sombrero".to_owned(),
        node: request.node.clone(),
        base_image: metadata.base_image.clone(),
        base_image_sha256: metadata.base_image_sha256.clone(),
        os: metadata.os.clone(),
        build: metadata.build.clone(),
    };
    let path = request.outputs_dir.join(PACKER_OUTPUTS);
    let text = serde_json::to_string_pretty(&outputs).unwrap_or_default() + "\n";
    crate::deploy::outputs::write_atomically(&path, &text)?;
    Ok(path)
}
