//! Feature protocols (request-response): inbound requests go to the bounded queue of their protocol, or get
//! the protocol's "busy" answer when it is full; responses and failures go back to the caller of
//! [`crate::Network::request`].

use libp2p::request_response;
use tokio::sync::mpsc;

use super::Driver;
use crate::frame::Frame;
use crate::{Inbound, NetError, Responder};

impl Driver {
    pub(super) fn rpc_event(&mut self, slot: usize, event: request_response::Event<Frame, Frame>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let Some((_, queue, busy)) = self.protocols.get(slot) else { return };
                    let inbound = Inbound { peer, request: request.into_bytes(), channel: Responder { slot, channel } };
                    if let Err(e) = queue.try_send(inbound) {
                        let inbound = match e {
                            mpsc::error::TrySendError::Full(i) | mpsc::error::TrySendError::Closed(i) => i,
                        };
                        let busy = busy.clone();
                        if let Some(rpc) = self.swarm.behaviour_mut().rpc.slot(slot) {
                            let _ = rpc.send_response(inbound.channel.channel, busy);
                        }
                    }
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some((_, reply)) = self.requests.remove(&(slot, request_id)) {
                        let _ = reply.send(Ok(response.into_bytes()));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, peer, .. } => {
                if let Some((_, reply)) = self.requests.remove(&(slot, request_id)) {
                    let reason = error.to_string();
                    let _ = reply.send(Err(match error {
                        request_response::OutboundFailure::DialFailure => NetError::Unreachable { peer, reason },
                        _ => NetError::Request { peer, reason },
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}
