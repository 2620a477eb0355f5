//! Storage protocol messages from a peer: any bytes decode to a message or an error, never a panic; a message
//! that decodes encodes back to bytes that decode to the same message, within its kind's size limit. (First
//! finding, 20 s in: a `GetFragment` with a 1 KiB owner field decoded although the network refuses it by its kind;
//! the decoder now applies the kind limits itself.)
#![no_main]

use bitdust_storage::proto::codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let head = &data[..data.len().min(16)];
    if let Ok(request) = codec::decode_request(bytes::Bytes::copy_from_slice(data)) {
        let again: Vec<u8> = codec::encode_request(&request).expect("a decoded request encodes").concat();
        let back = codec::decode_request(bytes::Bytes::from(again.clone())).expect("a re-encoded request decodes");
        assert_eq!(format!("{back:?}"), format!("{request:?}"));
        assert!(again.len() <= codec::request_limit(&again[..again.len().min(16)]));
    }
    let _ = codec::request_limit(head);
    if let Ok(response) = codec::decode_response(bytes::Bytes::copy_from_slice(data)) {
        let again: Vec<u8> = codec::encode_response(&response).expect("a decoded response encodes").concat();
        let back = codec::decode_response(bytes::Bytes::from(again.clone())).expect("a re-encoded response decodes");
        assert_eq!(format!("{back:?}"), format!("{response:?}"));
        assert!(again.len() <= codec::response_limit(&again[..again.len().min(16)]));
    }
    let _ = codec::response_limit(head);
});
