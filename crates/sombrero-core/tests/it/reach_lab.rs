//! The lab's SSH-forward question (`GET /lab/vms/{vmid}/ssh`) goes through the API client,
//! so the lab sees the client's credentials whatever they are: a ticket from a password
//! login as well as a token (decision 081).

use sombrero_core::deploy::SshRoute;
use sombrero_core::deploy::reach::{LabAnswer, ask_lab};

use super::deploy::{deploy_env, desired, lab};

#[tokio::test]
async fn with_a_ticket_login_the_lab_answers_the_forward_question() {
    let lab = lab().await;
    let ticketed = pve::Client::builder(lab.url())
        .password("root@pam", pve::Secret::new(lab.password()))
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = deploy_env(&ticketed, &desired("staging", dir.path()))
        .await
        .unwrap();
    // The lab answered (its guests are state-only), so the skip says why; it did not
    // take the API for a cluster without a forward.
    assert!(
        matches!(&report.ssh, SshRoute::Skipped { reason } if reason.contains("state-only")),
        "{:?}",
        report.ssh
    );
    assert_eq!(ask_lab(&ticketed, 152).await, LabAnswer::NoSsh);
    // Without credentials the lab refuses (401): that is "not a lab".
    let anonymous = pve::Client::builder(lab.url()).build().unwrap();
    assert_eq!(ask_lab(&anonymous, 152).await, LabAnswer::NotALab);
}
