//! `bitdust msg send NAME TEXT|--file PATH`, `msg history NAME`, `msg inbox`, `msg sync`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use bitdust_api::{Conversation, HistorySync, Inbox, MarkedRead, MessageInfo, SendMessage};
use bitdust_node::Home;

use super::contacts::encode;
use super::print;
use bitdust::client::Client;

/// `bitdust msg send NAME TEXT` or `bitdust msg send NAME --file PATH`.
///
/// # Errors
/// An unknown contact, a key change not confirmed, a contact that never answered, a file that cannot be read, or
/// the daemon.
pub fn send(
    home: &Home,
    name: &str,
    text: Option<String>,
    file: Option<PathBuf>,
    via_storage: bool,
    json: bool,
) -> Result<()> {
    let file = match file {
        Some(f) => {
            Some(std::path::absolute(&f).with_context(|| format!("cannot send {}", f.display()))?.display().to_string())
        }
        None => None,
    };
    let body = SendMessage { to: name.to_string(), text: text.unwrap_or_default(), file, via_storage };
    let m: MessageInfo = Client::for_home(home)?.post("/messages", &body)?;
    print(json, &m, |m| match &m.file {
        Some(f) => {
            format!("{} {} ({} bytes) offered to {name}: {name} fetches it from this node", m.state, f.name, f.size)
        }
        None => format!("{} to {name} (#{})", m.state, m.seq),
    });
    Ok(())
}

/// How the history shows a message's file.
fn file_note(m: &MessageInfo) -> String {
    match &m.file {
        None => String::new(),
        Some(f) => match f.state.as_str() {
            "receiving" => format!("  [receiving {} of {} bytes]", f.received_bytes, f.size),
            "received" => format!("  [received: {}]", f.path),
            "failed" => format!("  [failed: {}]", f.error.as_deref().unwrap_or("")),
            other => format!("  [{other}]"),
        },
    }
}

/// `bitdust msg history NAME [--limit N]`.
///
/// # Errors
/// An unknown contact, or the daemon.
pub fn history(home: &Home, name: &str, limit: u32, json: bool) -> Result<()> {
    let client = Client::for_home(home)?;
    let v: Conversation = client.get(&format!("/messages/{}?limit={limit}", encode(name)))?;
    // shown: the contact gets a read receipt
    let _: MarkedRead = client.post(&format!("/messages/{}/read", encode(name)), &serde_json::json!({}))?;
    print(json, &v, |v| {
        if v.messages.is_empty() {
            return format!("no messages with {} yet", v.contact);
        }
        v.messages
            .iter()
            .map(|m| {
                let who = if m.outgoing { "me" } else { v.contact.as_str() };
                let state = if m.outgoing { format!("  [{}]", m.state) } else { String::new() };
                format!("{who}: {}{state}{}", m.text, file_note(m))
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// `bitdust msg inbox`.
///
/// # Errors
/// The daemon.
pub fn inbox(home: &Home, json: bool) -> Result<()> {
    let v: Inbox = Client::for_home(home)?.get("/inbox")?;
    print(json, &v, |v| {
        if v.conversations.is_empty() {
            return "no messages yet".into();
        }
        v.conversations
            .iter()
            .map(|c| {
                let last = c.last.as_ref().map_or(String::new(), |m| {
                    format!("{}{}", if m.outgoing { "me: " } else { "" }, m.text.chars().take(60).collect::<String>())
                });
                let stranger = if c.is_contact { "" } else { " (not a contact)" };
                format!("{}{stranger} ({} messages): {last}", c.contact, c.messages)
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// `bitdust msg sync`.
///
/// # Errors
/// No suppliers, or the daemon.
pub fn sync(home: &Home, json: bool) -> Result<()> {
    let v: HistorySync = Client::for_home(home)?.post("/history/sync", &serde_json::json!({}))?;
    print(json, &v, |v| {
        if v.stored { "contacts and conversations stored on your suppliers" } else { "your suppliers have everything" }
            .into()
    });
    Ok(())
}
