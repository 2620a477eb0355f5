//! `bitdust contacts [add WHO | remove NAME | verify NAME]`: the address book.

use anyhow::Result;
use bitdust_api::{AddContact, ContactInfo, Contacts, SafetyNumber};
use bitdust_node::Home;

use super::print;
use bitdust::client::Client;

fn line(c: &ContactInfo) -> String {
    let state = match (&c.key_change, c.verified) {
        (Some(change), _) => format!("KEY CHANGED: {change}"),
        (None, true) => "verified".into(),
        (None, false) => "not verified".into(),
    };
    let presence = match (c.online, c.last_seen_unix) {
        (Some(true), _) => "online".to_string(),
        (_, Some(t)) => format!("last seen {}", ago(t)),
        (Some(false), None) => "offline".into(),
        (None, None) => "-".into(),
    };
    format!("{:<20} {:<30} {:<20} {}", c.name, c.global_id, presence, state)
}

/// "5 min ago" for Unix seconds `t`.
fn ago(t: u64) -> String {
    let now = super::now_ms() / 1000;
    let s = now.saturating_sub(t);
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// `bitdust contacts`.
///
/// # Errors
/// If the daemon does not answer.
pub fn list(home: &Home, json: bool) -> Result<()> {
    let v: Contacts = Client::for_home(home)?.get("/contacts")?;
    print(json, &v, |v| {
        if v.contacts.is_empty() {
            return "no contacts yet: `bitdust contacts add NICKNAME`".into();
        }
        let mut s = format!("{:<20} {:<30} {:<20} STATE", "NAME", "GLOBAL ID", "PRESENCE");
        for c in &v.contacts {
            s += &format!("\n{}", line(c));
        }
        s
    });
    Ok(())
}

/// `bitdust contacts add WHO [--name NAME]`.
///
/// # Errors
/// Nobody found, a contact already, a key change, or the daemon.
pub fn add(home: &Home, who: &str, name: Option<String>, json: bool) -> Result<()> {
    let c: ContactInfo = Client::for_home(home)?.post("/contacts", &AddContact { who: who.to_string(), name })?;
    print(json, &c, |c| {
        format!("added {} ({}); compare safety numbers with `bitdust contacts verify {}`", c.name, c.global_id, c.name)
    });
    Ok(())
}

/// `bitdust contacts remove NAME`.
///
/// # Errors
/// An unknown contact, or the daemon.
pub fn remove(home: &Home, name: &str, json: bool) -> Result<()> {
    let c: ContactInfo = Client::for_home(home)?.delete(&format!("/contacts/{}", encode(name)))?;
    print(json, &c, |c| format!("removed {}", c.name));
    Ok(())
}

/// `bitdust contacts verify NAME [--confirm]`.
///
/// # Errors
/// An unknown contact, or the daemon.
pub fn verify(home: &Home, name: &str, confirm: bool, json: bool) -> Result<()> {
    let path = format!("/contacts/{}/verify", encode(name));
    let c = Client::for_home(home)?;
    let v: SafetyNumber = if confirm { c.post(&path, &())? } else { c.get(&path)? };
    print(json, &v, |v| {
        let mut s =
            format!("safety number with {} ({}):\n\n  {}\n", v.contact.name, v.contact.global_id, v.safety_number);
        match (&v.contact.key_change, v.contact.verified) {
            (Some(change), _) => {
                s += &format!("\nKEY CHANGED: {change}\nDo not trust it before you compared the numbers.")
            }
            (None, true) => s += "\nverified",
            (None, false) => {
                s += &format!(
                    "\nCompare it with {} out of band; if equal: `bitdust contacts verify {} --confirm`",
                    v.contact.name, v.contact.name
                )
            }
        }
        s
    });
    Ok(())
}

/// A contact name as one URL path segment (percent-encoded outside unreserved characters).
pub(crate) fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
