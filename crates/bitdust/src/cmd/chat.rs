//! `bitdust chat NAME`: a terminal chat with a contact, or with a group (`chat group:NAME`). Lines typed are sent
//! (each shows its delivery state); incoming messages appear as they arrive, followed through the daemon's event
//! log. Ends at end of input (Ctrl-D).

use std::collections::HashSet;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Result};
use bitdust::client::Client;
use bitdust::out;
use bitdust_api::{
    Contacts, Conversation, EventKind, Events, GroupConversation, GroupMessageInfo, GroupSentInfo, MarkedRead,
    MessageInfo, SendGroupMessage, SendMessage,
};
use bitdust_node::Home;

use super::contacts::encode;

/// Messages shown when the chat opens.
const BACKLOG: u32 = 20;
/// Long-poll timeout of the event log, in milliseconds (also how soon the chat notices the end of input).
const POLL_MS: u64 = 500;

fn show(contact: &str, m: &MessageInfo) {
    if m.outgoing {
        out!("me: {}  [{}]", m.text, m.state);
    } else {
        out!("{contact}: {}", m.text);
    }
}

/// `bitdust chat NAME` (or `group:NAME`).
///
/// # Errors
/// An unknown contact or group, or the daemon.
pub fn run(home: &Home, name: &str) -> Result<()> {
    if let Some(group) = name.strip_prefix("group:") {
        return group_chat(home, group);
    }
    let client = Client::for_home(home)?;
    let contacts: Contacts = client.get("/contacts")?;
    let Some(contact) = contacts.contacts.iter().find(|c| c.name == name) else {
        bail!("no contact named {name:?} (see `bitdust contacts`)");
    };
    if let Some(change) = &contact.key_change {
        out!("KEY CHANGED: {change}; compare safety numbers with `bitdust contacts verify {name}` before you write");
    }
    let path = format!("/messages/{}?limit={BACKLOG}", encode(name));
    let backlog: Conversation = client.get(&path)?;
    let mut shown: HashSet<String> = HashSet::new();
    for m in &backlog.messages {
        show(name, m);
        shown.insert(m.id.clone());
    }
    let read_path = format!("/messages/{}/read", encode(name));
    let _: MarkedRead = client.post(&read_path, &serde_json::json!({}))?;
    out!("-- chatting with {} ({}); end with Ctrl-D --", contact.name, contact.global_id);

    // typing: one thread sends each line, printing its state
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let (client, name, done) = (Client::for_home(home)?, name.to_string(), done.clone());
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(text) = line else { break };
                if text.trim().is_empty() {
                    continue;
                }
                match client.post::<_, MessageInfo>(
                    "/messages",
                    &SendMessage { to: name.clone(), text, file: None, via_storage: false },
                ) {
                    Ok(m) => show(&name, &m),
                    Err(e) => out!("not sent: {e:#}"),
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    // reading: the event log says when a message of this conversation arrives
    let mut since = client.get::<Events>("/events?since=0&timeout_ms=0")?.last_id;
    while !done.load(Ordering::SeqCst) {
        let page: Events = client.get(&format!("/events?since={since}&timeout_ms={POLL_MS}"))?;
        let (mut fresh, mut read) = (false, false);
        for e in &page.events {
            since = since.max(e.id);
            match &e.kind {
                EventKind::Message { contact, outgoing: false, .. } => fresh |= contact == name,
                EventKind::Message { contact, outgoing: true, state, .. } if contact == name && state == "read" => {
                    read = true;
                }
                _ => {}
            }
        }
        if page.last_id < since {
            since = page.last_id; // the daemon restarted: its ids began again
        }
        if fresh {
            let recent: Conversation = client.get(&path)?;
            for m in recent.messages.iter().filter(|m| !m.outgoing) {
                if shown.insert(m.id.clone()) {
                    show(name, m);
                }
            }
            let _: MarkedRead = client.post(&read_path, &serde_json::json!({}))?;
        }
        if read {
            out!("-- {name} has read your messages");
        }
    }
    let _ = sender.join();
    Ok(())
}

fn show_group(m: &GroupMessageInfo) {
    out!("{}: {}", super::group::who(m.outgoing, m.from_contact.as_ref(), &m.from), m.text);
}

/// `bitdust chat group:NAME`.
fn group_chat(home: &Home, group: &str) -> Result<()> {
    let client = Client::for_home(home)?;
    let path = format!("/groups/{}/messages?limit={BACKLOG}", encode(group));
    let backlog: GroupConversation = client.get(&path)?;
    if !backlog.group.active {
        bail!("we are no longer a member of {group}");
    }
    // the events name the group by its name; messages are sent to its id (names may repeat)
    let (label, id) = (format!("group:{}", backlog.group.name), backlog.group.id.clone());
    let mut shown: HashSet<String> = HashSet::new();
    for m in &backlog.messages {
        show_group(m);
        shown.insert(m.id.clone());
    }
    out!("-- chatting in {} ({} members); end with Ctrl-D --", backlog.group.name, backlog.group.members.len());
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let (client, done) = (Client::for_home(home)?, done.clone());
        let send_path = format!("/groups/{id}/messages");
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(text) = line else { break };
                if text.trim().is_empty() {
                    continue;
                }
                match client.post::<_, GroupSentInfo>(&send_path, &SendGroupMessage { text }) {
                    Ok(s) => out!(
                        "me: {}  [delivered {}, stored {}, missed {}]",
                        s.message.text,
                        s.delivered,
                        s.stored,
                        s.missed
                    ),
                    Err(e) => out!("not sent: {e:#}"),
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let path = format!("/groups/{id}/messages?limit={BACKLOG}");
    let mut since = client.get::<Events>("/events?since=0&timeout_ms=0")?.last_id;
    while !done.load(Ordering::SeqCst) {
        let page: Events = client.get(&format!("/events?since={since}&timeout_ms={POLL_MS}"))?;
        let mut fresh = false;
        for e in &page.events {
            since = since.max(e.id);
            if let EventKind::Message { contact, outgoing: false, .. } = &e.kind {
                fresh |= *contact == label;
            }
        }
        if page.last_id < since {
            since = page.last_id;
        }
        if fresh {
            let recent: GroupConversation = client.get(&path)?;
            for m in recent.messages.iter().filter(|m| !m.outgoing) {
                if shown.insert(m.id.clone()) {
                    show_group(m);
                }
            }
        }
    }
    let _ = sender.join();
    Ok(())
}
