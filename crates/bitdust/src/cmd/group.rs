//! `bitdust group create|add|remove|leave|send|history|members|list`: group conversations.

use anyhow::Result;
use bitdust_api::{AddMember, CreateGroup, GroupConversation, GroupInfo, GroupSentInfo, Groups, SendGroupMessage};
use bitdust_node::Home;

use super::contacts::encode;
use super::print;
use bitdust::client::Client;

/// How a member or writer is shown: `me`, its contact name, else the start of its peer id.
pub fn who(me: bool, contact: Option<&String>, peer_id: &str) -> String {
    if me {
        "me".to_string()
    } else {
        contact.cloned().unwrap_or_else(|| peer_id.chars().take(16).collect())
    }
}

fn members_line(g: &GroupInfo) -> String {
    g.members
        .iter()
        .map(|m| {
            let name = who(m.me, m.contact.as_ref(), &m.peer_id);
            if m.admin {
                format!("{name} (admin)")
            } else {
                name
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `bitdust group create NAME`.
///
/// # Errors
/// A bad or taken name, or the daemon.
pub fn create(home: &Home, name: &str, json: bool) -> Result<()> {
    let g: GroupInfo = Client::for_home(home)?.post("/groups", &CreateGroup { name: name.to_string() })?;
    print(json, &g, |g| {
        format!("group {} created ({}); add members with `bitdust group add {} CONTACT`", g.name, g.id, g.name)
    });
    Ok(())
}

/// `bitdust group add NAME CONTACT [--history]` (the admin only).
///
/// # Errors
/// An unknown group or contact, not the admin, or the daemon.
pub fn add(home: &Home, name: &str, contact: &str, history: bool, json: bool) -> Result<()> {
    let body = AddMember { contact: contact.to_string(), history };
    let g: GroupInfo = Client::for_home(home)?.post(&format!("/groups/{}/members", encode(name)), &body)?;
    print(json, &g, |g| format!("{contact} added to {}: {}", g.name, members_line(g)));
    Ok(())
}

/// `bitdust group remove NAME MEMBER` (the admin only).
///
/// # Errors
/// An unknown group or member, not the admin, or the daemon.
pub fn remove(home: &Home, name: &str, member: &str, json: bool) -> Result<()> {
    let g: GroupInfo =
        Client::for_home(home)?.delete(&format!("/groups/{}/members/{}", encode(name), encode(member)))?;
    print(json, &g, |g| {
        format!("{member} removed from {}: every member uses a new key; {member} cannot read what follows", g.name)
    });
    Ok(())
}

/// `bitdust group leave NAME`.
///
/// # Errors
/// An unknown group, the admin, or the daemon.
pub fn leave(home: &Home, name: &str, json: bool) -> Result<()> {
    let g: GroupInfo =
        Client::for_home(home)?.post(&format!("/groups/{}/leave", encode(name)), &serde_json::json!({}))?;
    print(json, &g, |g| format!("left {} (its history stays here)", g.name));
    Ok(())
}

/// `bitdust group send NAME TEXT`.
///
/// # Errors
/// An unknown group, not a member, a text over the limit, or the daemon.
pub fn send(home: &Home, name: &str, text: &str, json: bool) -> Result<()> {
    let body = SendGroupMessage { text: text.to_string() };
    let s: GroupSentInfo = Client::for_home(home)?.post(&format!("/groups/{}/messages", encode(name)), &body)?;
    print(json, &s, |s| {
        let mut line = format!("sent to {name}: delivered to {}", s.delivered);
        if s.stored > 0 {
            line += &format!(", left in the mailboxes of {}", s.stored);
        }
        if s.missed > 0 {
            line += &format!(", {} not reached", s.missed);
        }
        line
    });
    Ok(())
}

/// `bitdust group history NAME [--limit N]`.
///
/// # Errors
/// An unknown group, or the daemon.
pub fn history(home: &Home, name: &str, limit: u32, json: bool) -> Result<()> {
    let v: GroupConversation =
        Client::for_home(home)?.get(&format!("/groups/{}/messages?limit={limit}", encode(name)))?;
    print(json, &v, |v| {
        if v.messages.is_empty() {
            return format!("no messages in {} yet", v.group.name);
        }
        v.messages
            .iter()
            .map(|m| format!("{}: {}", who(m.outgoing, m.from_contact.as_ref(), &m.from), m.text))
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// `bitdust group members NAME`.
///
/// # Errors
/// An unknown group, or the daemon.
pub fn members(home: &Home, name: &str, json: bool) -> Result<()> {
    let g: GroupInfo = Client::for_home(home)?.get(&format!("/groups/{}", encode(name)))?;
    print(json, &g, |g| {
        let state = if g.active { String::new() } else { " (we are no longer a member)".to_string() };
        format!("{} (revision {}){state}: {}", g.name, g.revision, members_line(g))
    });
    Ok(())
}

/// `bitdust group list`.
///
/// # Errors
/// The daemon.
pub fn list(home: &Home, json: bool) -> Result<()> {
    let v: Groups = Client::for_home(home)?.get("/groups")?;
    print(json, &v, |v| {
        if v.groups.is_empty() {
            return "no groups yet: `bitdust group create NAME`".to_string();
        }
        v.groups
            .iter()
            .map(|g| {
                let state = if g.active { "" } else { "  (left)" };
                format!("{}  {}  {} members{state}", g.name, g.id, g.members.len())
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
