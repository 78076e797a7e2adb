//! What every stage-2 command shares: the desired VM and the template request, from the
//! command's context.
//!
//! Why shared: `plan`, `deploy`, `status`, `destroy` and `adopt` must see the same desired
//! VM on the same cluster (`--lab` included); the context gives them one set of settings
//! and one client, and this gives them one desired VM and one text view of a plan.

use std::fmt::Write as _;

use sombrero_core::deploy::placement::{self, Cluster, Placement, Purpose};
use sombrero_core::deploy::{self, Action, Desired, Plan, TemplateRequest};

use crate::context::Context;

/// Whether a stage-2 command needs the VM's SSH public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// It writes the key into the VM's config (plan, deploy, adopt) or compares it (status).
    Required,
    /// It never looks at the key (destroy): an operator tearing an environment down
    /// should not have to provide one.
    Optional,
}

/// What a stage-2 command works with besides its context.
#[derive(Debug)]
pub struct Stage2 {
    pub desired: Desired,
    pub request: TemplateRequest,
    /// Where the VM is or goes, once [`Stage2::place`] asked the cluster.
    pub placement: Option<Placement>,
    /// The cluster as [`Stage2::place`] read it, for [`Stage2::plan`] (one read of
    /// `/cluster/resources` per command).
    pub cluster: Option<Cluster>,
}

impl Stage2 {
    /// Reads the SSH key (per `key_use`) and derives the desired VM and the template
    /// request from the context's settings.
    ///
    /// # Errors
    /// A required SSH key that is missing or unreadable, a template hand-off file that
    /// cannot be read (exit 2).
    pub fn prepare(context: &Context, linked: bool, key_use: KeyUse) -> anyhow::Result<Self> {
        let settings = &context.settings;
        let key = settings.ssh_public_key(|path| std::fs::read_to_string(path));
        let key = match key_use {
            KeyUse::Required => Some(key?),
            KeyUse::Optional => key.ok(),
        };
        let mut desired = Desired::from_settings(settings, key.as_ref(), linked);
        if key_use == KeyUse::Required {
            // The outputs name the private key really found (configure needs it; deploy
            // does not, so a missing one is only a warning here).
            match super::configure::private_key(settings) {
                Ok(found) => {
                    desired.ssh_key_path = found.path().map(|path| path.display().to_string());
                }
                Err(error) if context.lab().is_none() => context
                    .printer
                    .warn(&format!("{error}: `sombrero configure` will need it")),
                Err(_) => {}
            }
        }
        let request = deploy::template::request(settings)?;
        Ok(Self {
            desired,
            request,
            placement: None,
            cluster: None,
        })
    }

    /// [`Stage2::prepare`], then [`Stage2::place`].
    ///
    /// # Errors
    /// As both.
    pub async fn prepared(
        context: &Context,
        linked: bool,
        key_use: KeyUse,
        purpose: Purpose,
    ) -> anyhow::Result<Self> {
        let mut stage = Self::prepare(context, linked, key_use)?;
        stage.place(context, purpose).await?;
        Ok(stage)
    }

    /// Settles the VM's node from the cluster: where the VM is, else (creating) where the
    /// placement rule puts it (`node = "auto"` or a list), else the configured node.
    ///
    /// # Errors
    /// The API read, a named node unknown or offline, no node that fits (exit 1).
    pub async fn place(&mut self, context: &Context, purpose: Purpose) -> anyhow::Result<()> {
        let client = context.client()?;
        let cluster = Cluster::read(client).await?;
        let placement =
            placement::settle_in(client, &cluster, &mut self.desired, &self.request, purpose)
                .await?;
        tracing::debug!(node = %placement.node, reason = %placement.reason, "placement");
        self.placement = Some(placement);
        self.cluster = Some(cluster);
        Ok(())
    }

    /// The plan for the desired VM, on the cluster [`Stage2::place`] read.
    ///
    /// # Errors
    /// As [`deploy::plan`].
    pub async fn plan(&self, client: &pve::Client) -> Result<Plan, deploy::DeployError> {
        deploy::plan::plan_in(client, self.cluster.as_ref(), &self.desired, &self.request).await
    }

    /// The plan with the placement's reason attached.
    pub fn explain(&self, mut plan: Plan) -> Plan {
        plan.placement.clone_from(&self.placement);
        plan
    }
}

/// The plan as text: a header, then one line per field (`+` set, `~` change).
pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Environment {}: VM {} ({}) on node {}",
        plan.environment, plan.vmid, plan.name, plan.node
    );
    if let Some(placement) = &plan.placement {
        let _ = writeln!(out, "  node {}: {}", placement.node, placement.reason);
    }
    let template = plan.template.as_ref().map(|choice| {
        let name = choice
            .name
            .as_ref()
            .map(|name| format!(" {name:?}"))
            .unwrap_or_default();
        format!(
            "template {}{name}, chosen by {}",
            choice.id, choice.chosen_by
        )
    });
    match plan.action {
        Action::Create => {
            let _ = writeln!(
                out,
                "  action: create (clone of {})",
                template.unwrap_or_default()
            );
        }
        other => {
            let power = plan.power.as_deref().unwrap_or("absent");
            let _ = writeln!(out, "  action: {} (VM is {power})", other.describe());
            if let Some(template) = template {
                let _ = writeln!(out, "  {template}");
            }
        }
    }
    for change in &plan.changes {
        let one_line = |text: &str| text.replace('\n', "\\n");
        let restart = if change.restart { " (restart)" } else { "" };
        match &change.from {
            Some(from) if plan.action != Action::Create => {
                let _ = writeln!(
                    out,
                    "  ~ {}: {} -> {}{restart}",
                    change.field,
                    one_line(from),
                    one_line(&change.to)
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "  + {}: {}{restart}",
                    change.field,
                    one_line(&change.to)
                );
            }
        }
    }
    for note in &plan.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}
