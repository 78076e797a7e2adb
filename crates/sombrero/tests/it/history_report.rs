//! `sombrero report --html`: the file is self-contained, and it really renders. Also the
//! other export, `sombrero metrics --prometheus`: written atomically, parseable.
//!
//! Why a browser in the test: an HTML file that parses can still draw nothing (an SVG with
//! a zero-size viewBox, a misplaced stylesheet). Headless Chromium renders the page to a
//! PNG and the test looks for the chart palette's colours in it. When Chromium is not
//! installed the rendering test says so and passes without checking (CI installs it).
//! `SOMBRERO_REPORT_EXAMPLE=path.png` also copies the screenshot there (docs/report-example.png).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sombrero_core::history::report::svg::PALETTE;

use crate::history_fixture::Workspace;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn write_report(workspace: &Workspace) -> (PathBuf, String) {
    let html = workspace.path("report/deployments.html");
    std::fs::create_dir_all(html.parent().unwrap()).unwrap();
    workspace
        .sombrero(&["report", "--html", html.to_str().unwrap()])
        .assert()
        .success();
    let text = std::fs::read_to_string(&html).unwrap();
    (html, text)
}

#[test]
fn the_report_is_one_file_that_fetches_nothing() {
    let workspace = Workspace::with(40, 9 * 3_600_000);
    let (_, html) = write_report(&workspace);
    let lower = html.to_lowercase();
    for forbidden in [
        "http:", "https:", "src=", "href=", "url(", "@import", "<script", "<link",
    ] {
        assert!(
            !lower.contains(forbidden),
            "the report must not reference {forbidden}"
        );
    }
    assert_eq!(html.matches("<svg ").count(), 4, "four charts");
    // Every run in the duration chart has a bar segment per phase with its real duration.
    let last = &workspace.runs[39];
    for (name, ms, _) in &last.phases {
        let seconds = ms / 1000;
        let label = format!(
            "{} {name}: {}m {}s",
            workspace.ids[39],
            seconds / 60,
            seconds % 60
        );
        let label = label.replace(" 0m ", " ");
        assert!(html.contains(&label), "missing bar {label}");
    }
    let failed = workspace.runs.iter().filter(|run| !run.succeeded()).count();
    assert!(html.contains(&format!("({}/40)", 40 - failed)));
}

#[test]
fn the_report_is_refused_for_an_unwritable_path() {
    let workspace = Workspace::new();
    let target = workspace.path("missing-directory/report.html");
    workspace
        .sombrero(&["report", "--html", target.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("missing-directory/report.html"));
}

/// Counts pixels near each palette colour, and pixels that are not white.
fn colour_census(png: &Path) -> (Vec<usize>, usize, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = info.color_type.samples();
    let palette: Vec<[u8; 3]> = PALETTE
        .iter()
        .map(|hex| {
            let value = u32::from_str_radix(&hex[1..], 16).unwrap();
            let [_, red, green, blue] = value.to_be_bytes();
            [red, green, blue]
        })
        .collect();
    let mut counts = vec![0; palette.len()];
    let mut not_white = 0;
    let pixels = buffer[..info.buffer_size()].chunks(channels);
    let total = pixels.len();
    for pixel in pixels {
        if pixel[..3].iter().any(|channel| *channel < 240) {
            not_white += 1;
        }
        for (count, colour) in counts.iter_mut().zip(&palette) {
            if pixel[..3]
                .iter()
                .zip(colour)
                .all(|(a, b)| a.abs_diff(*b) <= 4)
            {
                *count += 1;
            }
        }
    }
    (counts, not_white, total)
}

#[test]
fn the_report_renders_its_charts_in_chromium() {
    let Some(browser) = chromium() else {
        pve_lab::testing::skip(
            "the_report_renders_its_charts_in_chromium",
            "chromium is not installed (apt-get install chromium)",
        );
        return;
    };
    let workspace = Workspace::with(40, 9 * 3_600_000);
    let (html, _) = write_report(&workspace);
    let screenshot = workspace.path("report/screenshot.png");
    let profile = workspace.path("chromium-profile");
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=1200,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", html.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "chromium failed: {status}");
    let (counts, not_white, total) = colour_census(&screenshot);
    // The three phases are drawn in the first three palette colours, as solid bars.
    for (index, count) in counts.iter().take(3).enumerate() {
        assert!(
            *count > 400,
            "palette colour {} covers only {count} pixels",
            PALETTE[index]
        );
    }
    assert!(
        not_white * 20 > total,
        "the page is nearly blank: {not_white} of {total} pixels"
    );
    if let Some(example) = std::env::var_os("SOMBRERO_REPORT_EXAMPLE") {
        std::fs::copy(&screenshot, example).unwrap();
    }
}

#[test]
fn prometheus_textfile_is_written_atomically_with_env_labels() {
    let workspace = Workspace::new();
    let target = workspace.path("textfile/sombrero.prom");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, "old content\n").unwrap();
    workspace
        .sombrero(&["metrics", "--prometheus", target.to_str().unwrap()])
        .assert()
        .success();
    let text = std::fs::read_to_string(&target).unwrap();
    let production_ok = workspace
        .runs
        .iter()
        .filter(|run| run.environment == "production" && run.succeeded())
        .count();
    assert!(text.contains("# TYPE sombrero_runs_total counter"));
    assert!(
        text.contains(&format!(
            "sombrero_runs_total{{env=\"production\",status=\"success\"}} {production_ok}\n"
        )),
        "{text}"
    );
    assert!(text.contains(
        "sombrero_phase_duration_seconds{env=\"staging\",phase=\"configure\",statistic=\"p95\"}"
    ));
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        assert!(
            line.starts_with("sombrero_") && line.contains("{env=\""),
            "{line}"
        );
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");

    let missing = workspace.path("no-such-dir/sombrero.prom");
    workspace
        .sombrero(&["metrics", "--prometheus", missing.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no-such-dir/sombrero.prom"));
}
