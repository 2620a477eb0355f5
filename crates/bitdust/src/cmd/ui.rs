//! `bitdust ui`: a one-time link that logs a browser into the daemon's web UI; opened at once on a desktop (through
//! a 0600 page in the home that forwards to it, so the code never shows in a process's command line).

use anyhow::Result;
use bitdust::client::Client;
use bitdust::out;
use bitdust_api::UiLogin;
use bitdust_node::Home;

use super::print;

/// Runs the command: asks the daemon for a login link, prints it and, unless `no_open` or there is no desktop
/// (`DISPLAY`, `WAYLAND_DISPLAY`), opens it with `xdg-open` (macOS: `open`).
///
/// # Errors
/// If the daemon does not answer.
pub fn run(home: &Home, no_open: bool, json: bool) -> Result<()> {
    let login: UiLogin = Client::for_home(home)?.post("/ui/login", &serde_json::json!({}))?;
    print(json, &login, |l| {
        format!("open this link in a browser on this machine (it works once, for {} s):\n{}", l.expires_in_s, l.url)
    });
    let desktop = std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if !no_open && (desktop || cfg!(target_os = "macos")) {
        let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
        // the browser is given a 0600 page in the home that forwards to the link, not the link itself: a command
        // line is readable by every local user (/proc/PID/cmdline), and the code opens a session
        let page = home.path("ui-login.html");
        let html = format!(
            "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=\"0;url={}\"><title>bitdust</title>",
            login.url
        );
        bitdust_node::home::write_secret(&page, html.as_bytes())?;
        let opened = std::process::Command::new(opener)
            .arg(&page)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if opened.is_err() && !json {
            out!("(could not start {opener}: open the link yourself)");
        }
    }
    Ok(())
}
