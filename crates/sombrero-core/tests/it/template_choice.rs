//! Which template stage 2 clones (decision 062): a template id set on purpose
//! (`--template` > `TEMPLATE_ID` > `sombrero.toml`) wins over discovery (stage 1's
//! `packer-outputs.json` > the newest tagged template), `plan` says which rule chose, and
//! an explicit id that does not exist is an error naming the node.

use std::path::Path;

use sombrero_core::deploy::{self, DeployError, template};

use crate::deploy::{
    client, desired, lab, newer_tagged_template, settings, settings_from, without_template_id,
};

fn hand_over(dir: &Path, id: u32) {
    std::fs::create_dir_all(dir.join("outputs")).unwrap();
    std::fs::write(
        dir.join("outputs/packer-outputs.json"),
        format!(r#"{{"template_id": "{id}"}}"#),
    )
    .unwrap();
}

#[tokio::test]
async fn sombrero_toml_wins_over_the_handoff_and_the_newest_tagged_template() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    newer_tagged_template(&client).await;
    let dir = tempfile::tempdir().unwrap();
    hand_over(dir.path(), 1002);
    // The shipped file sets template_id = 1001 in [defaults]: that is what gets cloned,
    // and what `config show` reports.
    let request = template::request(&settings("staging", dir.path())).unwrap();
    let plan = deploy::plan(&client, &desired("staging", dir.path()), &request)
        .await
        .unwrap();
    let choice = plan.template.expect("a template");
    assert_eq!(choice.id, 1001);
    assert!(
        choice
            .chosen_by
            .ends_with("sombrero.toml:defaults.template_id"),
        "{}",
        choice.chosen_by
    );

    // Without it, the handoff decides, then the newest tagged template.
    let discovering = settings_from(&without_template_id(), "staging", dir.path());
    let handed = template::resolve(&client, "lloyd", &template::request(&discovering).unwrap())
        .await
        .unwrap();
    assert_eq!(handed.id, 1002);
    assert!(handed.chosen_by.contains("packer-outputs.json"));
    std::fs::remove_file(dir.path().join("outputs/packer-outputs.json")).unwrap();
    let newest = template::resolve(&client, "lloyd", &template::request(&discovering).unwrap())
        .await
        .unwrap();
    assert!(
        newest.chosen_by.starts_with("newest template tagged"),
        "{}",
        newest.chosen_by
    );
}

#[tokio::test]
async fn an_explicit_template_that_does_not_exist_is_an_error_naming_the_node() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    let config =
        crate::deploy::SHIPPED_CONFIG.replacen("template_id = 1001", "template_id = 4242", 1);
    let request = template::request(&settings_from(&config, "staging", dir.path())).unwrap();
    let error = deploy::plan(&client, &desired("staging", dir.path()), &request)
        .await
        .expect_err("4242 does not exist");
    assert!(
        matches!(&error, DeployError::TemplateMissing { id: Some(4242), node, .. } if node == "lloyd"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("template 4242 does not exist on node lloyd")
            && message.contains("sombrero.toml:defaults.template_id"),
        "{message}"
    );
}
