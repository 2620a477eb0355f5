//! `bitdust chat NAME`: a terminal chat with a contact. Lines typed are sent (each shows its delivery state);
//! incoming messages appear as they arrive, followed through the daemon's event log. Ends at end of input
//! (Ctrl-D).

use std::collections::HashSet;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Result};
use bitdust::client::Client;
use bitdust::out;
use bitdust_api::{Contacts, Conversation, EventKind, Events, MarkedRead, MessageInfo, SendMessage};
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

/// `bitdust chat NAME`.
///
/// # Errors
/// An unknown contact, or the daemon.
pub fn run(home: &Home, name: &str) -> Result<()> {
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
