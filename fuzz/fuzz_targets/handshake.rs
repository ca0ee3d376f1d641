//! Feeds arbitrary bytes to the handshake parsers: the head reader (byte by byte and at once),
//! the request parser and checks, the client's response checks, and the permessage-deflate
//! parameter parsers (RFC 7692 §7.1) on both sides: the server's choice among a request's
//! offers and the client's check of a server's answer (fault catalogue 6 and 19).
//!
//! Nothing may panic, and whatever the parsers accept must hold: window sizes in range,
//! settings the endpoint asked for honoured, a server's answer acceptable to the client that
//! offered it with the same agreement, and connections built from the agreement exchanging
//! compressed messages both ways.
#![no_main]

use std::io::IoSlice;

use libfuzzer_sys::fuzz_target;
use wsharp_proto::deflate::{Deflate, Negotiated};
use wsharp_proto::handshake::{
    ClientHandshake, HeadReader, check_request, header_list, parse_request,
};
use wsharp_proto::http::header::SEC_WEBSOCKET_EXTENSIONS;
use wsharp_proto::http::{HeaderMap, HeaderValue};
use wsharp_proto::{Config, Connection, Event, Limits, Message, Role};

/// The most extension items of one header value that are parsed.
const MAX_ITEMS: usize = 8;

/// Server settings: the default, and one that limits and resets what it can.
fn server_settings() -> [Deflate; 2] {
    [
        Deflate::default(),
        Deflate::default()
            .server_no_context_takeover(true)
            .server_max_window_bits(Some(10))
            .client_max_window_bits(Some(12)),
    ]
}

/// Client settings: the default offer, and one that asks for limits and resets.
fn client_settings() -> [Deflate; 2] {
    [
        Deflate::default(),
        Deflate::default()
            .server_no_context_takeover(true)
            .client_no_context_takeover(true)
            .server_max_window_bits(Some(11))
            .client_max_window_bits(Some(9)),
    ]
}

fn check_ranges(n: &Negotiated) {
    assert!(
        (8..=15).contains(&n.server_max_window_bits),
        "server window {} agreed",
        n.server_max_window_bits
    );
    assert!(
        (8..=15).contains(&n.client_max_window_bits),
        "client window {} agreed",
        n.client_max_window_bits
    );
}

/// Takes everything `from` wants to write and hands it to `to`.
fn pump(from: &mut Connection, to: &mut Connection) {
    while from.has_transmit() {
        let mut slices = [IoSlice::new(&[]); 8];
        let n = from.transmit_slices(&mut slices);
        let bytes: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
        from.advance_transmit(bytes.len());
        to.handle_data(&bytes);
    }
}

/// A server and a client built from an agreement exchange messages both ways, twice (so a
/// kept context is used), and each reads exactly what the other sent.
fn round_trip(server_n: &Negotiated, server: &Deflate, client_n: &Negotiated, client: &Deflate) {
    let mut s = Connection::new(Role::Server, Config::default());
    s.set_deflate(server_n, server);
    let mut c = Connection::new(Role::Client, Config::default());
    c.set_deflate(client_n, client);
    let text = "permessage-deflate round trip, permessage-deflate round trip ".repeat(8);
    let one_way = |from: &mut Connection, to: &mut Connection| {
        from.send(Message::text(text.clone())).expect("open");
        pump(from, to);
        match to.poll_event() {
            Some(Event::Message(m)) => assert_eq!(m, Message::text(text.clone())),
            other => panic!("{server_n:?} / {client_n:?}: {other:?}"),
        }
    };
    for _ in 0..2 {
        one_way(&mut c, &mut s);
        one_way(&mut s, &mut c);
    }
}

/// The server's side: picks among `offers` as a server does with a request's
/// `Sec-WebSocket-Extensions` items.
fn server_negotiates(offers: &[String]) {
    for server in server_settings() {
        let Some((n, response)) = server.negotiate(offers) else {
            continue;
        };
        check_ranges(&n);
        assert!(
            (9..=15).contains(&n.server_max_window_bits),
            "the server agreed to compress with a {}-bit window",
            n.server_max_window_bits
        );
        if let Some(most) = server.server_max_window_bits {
            assert!(n.server_max_window_bits <= most, "{n:?} over {most}");
        }
        if server.server_no_context_takeover {
            assert!(n.server_no_context_takeover, "{n:?}");
        }
        // The first acceptable offer wins (a valid later offer is still accepted).
        let first = offers.iter().find_map(|o| server.negotiate(&[o]));
        assert_eq!(first.as_ref().map(|f| &f.1), Some(&response));
        // A client that allows everything reads the same agreement from the answer.
        let client = Deflate::default();
        let read = client
            .accept_response(&response)
            .unwrap_or_else(|e| panic!("our own answer {response:?} refused: {e}"));
        assert_eq!(read, n, "{response:?}");
        round_trip(&n, &server, &read, &client);
    }
}

/// The client's side: checks a server's answer as a client does with the one
/// `Sec-WebSocket-Extensions` item of a 101 response.
fn client_accepts(answer: &str) {
    for client in client_settings() {
        let Ok(n) = client.accept_response(answer) else {
            continue;
        };
        check_ranges(&n);
        if let Some(most) = client.server_max_window_bits {
            assert!(n.server_max_window_bits <= most, "{answer:?}: {n:?}");
        }
        if let Some(most) = client.client_max_window_bits {
            assert!(n.client_max_window_bits <= most, "{answer:?}: {n:?}");
        }
        if client.server_no_context_takeover {
            assert!(n.server_no_context_takeover, "{answer:?}: {n:?}");
        }
        if client.client_no_context_takeover {
            assert!(n.client_no_context_takeover, "{answer:?}: {n:?}");
        }
        round_trip(&n, &Deflate::default(), &n, &client);
    }
}

/// The items of a `Sec-WebSocket-Extensions` value, split as the handshake splits them.
fn extension_items(value: &[u8]) -> Option<Vec<String>> {
    let value = HeaderValue::from_bytes(value).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
    Some(header_list(&headers, SEC_WEBSOCKET_EXTENSIONS))
}

fn extensions(data: &[u8]) {
    // Each line is a header value, with a leading `Name:` dropped, so that request and response
    // heads in the corpus feed the parameter parsers too.
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let value = match line.iter().position(|&b| b == b':') {
            Some(colon)
                if line[..colon]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-') =>
            {
                &line[colon + 1..]
            }
            _ => line,
        };
        let Some(mut items) = extension_items(value) else {
            continue;
        };
        // Each item costs a few compressors: a bound keeps every input fast.
        items.truncate(MAX_ITEMS);
        server_negotiates(&items);
        for item in &items {
            client_accepts(item);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    extensions(data);

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
        // What a server does with the request's offers.
        let mut offers = up.extensions;
        offers.truncate(MAX_ITEMS);
        server_negotiates(&offers);
    }
    let request = wsharp_proto::http::Request::builder()
        .uri("ws://example.com/")
        .body(())
        .expect("a valid request");
    let (_, expect) = ClientHandshake::start(&request).expect("a URI with a host");
    let _ = expect.check(&head, &limits);
});
