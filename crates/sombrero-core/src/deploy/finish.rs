//! Turning a finished deploy into the stage outputs and the inventory.
//!
//! Why separate from the steps: the same values feed `terraform-outputs.json`, its
//! `ansible_inventory` object and `inventory.yml`, and they must agree; building them in
//! one function from the desired VM and the observed address guarantees that.

use std::net::IpAddr;

use super::desired::Desired;
use super::error::DeployResult;
use super::inventory::{InventoryFacts, inventory, to_yaml};
use super::outputs::{self, Layout, StageOutputs, absolute};
use super::plan::Plan;

/// Builds and writes the outputs of a deploy; returns what was written.
///
/// # Errors
/// [`super::error::DeployError::Write`].
pub fn write_outputs(
    desired: &Desired,
    plan: &Plan,
    vm_ip: IpAddr,
    connect_host: IpAddr,
    connect_port: u16,
    layout: &Layout,
) -> DeployResult<StageOutputs> {
    let known_hosts = absolute(&layout.known_hosts());
    let template_id = plan.template.as_ref().map(|choice| choice.id);
    let facts = InventoryFacts {
        hostname: &desired.name,
        connect_host: connect_host.to_string(),
        connect_port: (connect_port != 22).then_some(connect_port),
        ssh_user: &desired.ciuser,
        ssh_key_path: desired.ssh_key_path.as_deref(),
        known_hosts: &known_hosts,
        environment: &desired.environment,
        vm_id: desired.vmid,
        node: &desired.node,
        template_id,
        ip_address: vm_ip.to_string(),
        gateway: desired.gateway.to_string(),
        dns_servers: desired
            .nameservers
            .iter()
            .map(ToString::to_string)
            .collect(),
        cores: desired.cores,
        memory_mib: desired.memory_mib,
        disk_size: desired.disk_size.to_string(),
        tags: &desired.tags,
    };
    let inventory = inventory(&facts);
    let yaml = to_yaml(&inventory, &desired.environment);
    let deployed_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let stage = StageOutputs {
        vm_ip: vm_ip.to_string(),
        vm_hostname: desired.name.clone(),
        vm_id: desired.vmid.to_string(),
        ssh_user: desired.ciuser.clone(),
        ssh_key_path: desired.ssh_key_path.clone(),
        ansible_inventory: inventory,
        node: desired.node.clone(),
        template_id: template_id.map(|id| id.to_string()),
        environment: desired.environment.clone(),
        ssh_host: connect_host.to_string(),
        ssh_port: connect_port,
        known_hosts_file: known_hosts.display().to_string(),
        inventory_file: absolute(&layout.inventory()).display().to_string(),
        deployed_at,
    };
    outputs::write(layout, &stage, &yaml)?;
    Ok(stage)
}
