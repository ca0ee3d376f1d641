//! Feeds arbitrary bytes to the handshake parsers: the head reader (byte by byte and at once),
//! the request parser and checks, and the client's response checks. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsharp_proto::Limits;
use wsharp_proto::handshake::{ClientHandshake, HeadReader, check_request, parse_request};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default().max_handshake_size(4096).max_headers(16);
    let mut reader = HeadReader::new(4096);
    let mut head = None;
    for b in data {
        reader.buffer().extend_from_slice(std::slice::from_ref(b));
        match reader.poll_head() {
            Ok(Some(h)) => {
                head = Some(h);
                break;
            }
            Ok(None) => {}
            Err(e) => {
                assert!(e.status().is_client_error());
                return;
            }
        }
    }
    let Some(head) = head else { return };
    if let Ok(req) = parse_request(&head, &limits)
        && let Ok(up) = check_request(&req)
    {
        assert_eq!(up.accept.len(), 28);
    }
    let request = wsharp_proto::http::Request::builder().uri("ws://example.com/").body(()).unwrap();
    let (_, expect) = ClientHandshake::start(&request).unwrap();
    let _ = expect.check(&head, &limits);
});
