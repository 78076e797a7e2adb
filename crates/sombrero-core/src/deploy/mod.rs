//! Stage 2: the environment's VM from the template, idempotent, with the runbook's outputs.
//!
//! Why this shape (Terraform's plan/apply, without a state file): [`plan::plan`] reads the
//! cluster and compares it field by field with [`desired::Desired`] (from the settings);
//! [`apply::apply`] executes exactly that plan, then reaches the VM and writes the stage
//! outputs; [`manage`] holds `status`, `destroy` and `adopt`. Ownership lives on the VM (a
//! marker line in its description plus tags), so a re-deploy of a deployed environment
//! reads a few values and writes nothing, and a VM sombrero did not create is never
//! touched. Nothing here prints: progress is [`apply::DeployEvent`]s for the binary.

pub(crate) mod agent_wait;
pub mod apply;
pub mod converge;
pub mod desired;
pub mod diff;
pub mod error;
pub mod events;
mod finish;
mod hints;
pub mod inventory;
pub mod journal;
pub mod known_hosts;
pub mod manage;
pub mod migrate;
pub mod outputs;
pub mod placement;
pub mod plan;
pub mod preflight;
pub mod reach;
pub mod template;

pub use apply::{DeployReport, apply};
pub use desired::{Desired, MANAGED_TAG, Marker, TEMPLATE_TAGS};
pub use diff::{ChangeKind, FieldChange};
pub use error::{DeployError, DeployResult};
pub use events::{DeployEvent, Events, Step, Timeouts};
pub use hints::{client_error_hint, tls_hint};
pub use manage::{AdoptReport, DestroyReport, Status, adopt, destroy, destroy_target, status};
pub use outputs::{Layout, StageOutputs};
pub use plan::{Action, Plan, plan};
pub use reach::SshRoute;
pub use template::{TemplateChoice, TemplateRequest};
