//! `bitdust msg send NAME TEXT` and `bitdust msg history NAME`.

use anyhow::Result;
use bitdust_api::{Conversation, HistorySync, Inbox, MessageInfo, SendMessage};
use bitdust_node::Home;

use super::contacts::encode;
use super::print;
use bitdust::client::Client;

/// `bitdust msg send NAME TEXT`.
///
/// # Errors
/// An unknown contact, a key change not confirmed, a contact that never answered, or the daemon.
pub fn send(home: &Home, name: &str, text: &str, json: bool) -> Result<()> {
    let body = SendMessage { to: name.to_string(), text: text.to_string() };
    let m: MessageInfo = Client::for_home(home)?.post("/messages", &body)?;
    print(json, &m, |m| format!("{} to {name} (#{})", m.state, m.seq));
    Ok(())
}

/// `bitdust msg history NAME [--limit N]`.
///
/// # Errors
/// An unknown contact, or the daemon.
pub fn history(home: &Home, name: &str, limit: u32, json: bool) -> Result<()> {
    let v: Conversation = Client::for_home(home)?.get(&format!("/messages/{}?limit={limit}", encode(name)))?;
    print(json, &v, |v| {
        if v.messages.is_empty() {
            return format!("no messages with {} yet", v.contact);
        }
        v.messages
            .iter()
            .map(|m| {
                let who = if m.outgoing { "me" } else { v.contact.as_str() };
                let state = if m.outgoing { format!("  [{}]", m.state) } else { String::new() };
                format!("{who}: {}{state}", m.text)
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
