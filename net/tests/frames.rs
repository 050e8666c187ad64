//! The frame codec: round trips, streaming in any chunking, and refusal of every kind of bad
//! input with its own error, never a panic. FORMAT.md is the specification.

mod common;

use common::Rng;
use trireme_net::frame::{HEADER_LEN, MAGIC};
use trireme_net::{
    encode_frame, encode_frame_into, frame_len, ClusterHash, Frame, FrameDecoder, FrameError,
    FrameKind,
};

const LIMIT: u32 = 4 << 20;

fn cluster() -> ClusterHash {
    ClusterHash::of("alpha")
}

fn decoder() -> FrameDecoder {
    FrameDecoder::new(cluster(), LIMIT)
}

fn sample_frames() -> Vec<(FrameKind, Vec<u8>)> {
    let kinds = [
        FrameKind::Group,
        FrameKind::Keepalive,
        FrameKind::StateTransfer,
    ];
    [0usize, 1, 15, 16, 17, 31, 32, 33, 1000, 65_536, 1 << 20]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let payload = (0..len).map(|b| (b * 7 + i) as u8).collect();
            (kinds[i % kinds.len()], payload)
        })
        .collect()
}

fn stream_of(frames: &[(FrameKind, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, payload) in frames {
        encode_frame_into(*kind, cluster(), payload, &mut out).unwrap();
    }
    out
}

fn assert_same(decoded: &[Frame], expected: &[(FrameKind, Vec<u8>)]) {
    assert_eq!(decoded.len(), expected.len());
    for (d, (kind, payload)) in decoded.iter().zip(expected) {
        assert_eq!(d.kind, *kind);
        assert_eq!(d.payload.as_slice(), &payload[..]);
        if !payload.is_empty() {
            assert_eq!(
                d.payload.as_ptr() as usize % 16,
                0,
                "payload not 16-aligned"
            );
        }
    }
}

fn decode_one(bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
    let mut frames = Vec::new();
    decoder().feed(bytes, &mut frames).map(|()| frames)
}

#[test]
fn frames_of_every_kind_and_size_round_trip_with_aligned_payloads() {
    let expected = sample_frames();
    let stream = stream_of(&expected);
    let mut frames = Vec::new();
    let mut d = decoder();
    d.feed(&stream, &mut frames).unwrap();
    assert_same(&frames, &expected);
    assert_eq!(d.buffered_bytes(), 0);
}

#[test]
fn frame_length_is_header_plus_payload_padded_to_16() {
    for len in [0usize, 1, 15, 16, 17, 1000] {
        let f = encode_frame(FrameKind::Group, cluster(), &vec![1; len]).unwrap();
        assert_eq!(f.len(), frame_len(len));
        assert_eq!(f.len() % 16, 0);
        assert_eq!(f.len(), HEADER_LEN + len.div_ceil(16) * 16);
    }
}

#[test]
fn encoding_into_a_reused_buffer_appends_whole_frames() {
    let mut buf = encode_frame(FrameKind::Keepalive, cluster(), b"").unwrap();
    encode_frame_into(FrameKind::Group, cluster(), b"second", &mut buf).unwrap();
    let frames = decode_one(&buf).unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].payload.as_slice(), b"second");
}

#[test]
fn decoder_fed_byte_by_byte_yields_the_same_frames() {
    let expected: Vec<_> = sample_frames()
        .into_iter()
        .filter(|(_, p)| p.len() <= 65_536)
        .collect();
    let stream = stream_of(&expected);
    let mut d = decoder();
    let mut frames = Vec::new();
    for b in &stream {
        d.feed(std::slice::from_ref(b), &mut frames).unwrap();
    }
    assert_same(&frames, &expected);
}

#[test]
fn decoder_fed_random_chunks_yields_the_same_frames() {
    let mut rng = Rng::from_env("decoder_fed_random_chunks_yields_the_same_frames");
    for _round in 0..20 {
        let expected: Vec<_> = (0..50)
            .map(|_| {
                let len = match rng.below(10) {
                    0 => rng.below(200_000),
                    _ => rng.below(300),
                };
                (FrameKind::Group, rng.bytes(len))
            })
            .collect();
        let stream = stream_of(&expected);
        let mut d = decoder();
        let mut frames = Vec::new();
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(70_000)).min(rest.len());
            d.feed(&rest[..n], &mut frames).unwrap();
            rest = &rest[n..];
        }
        assert_same(&frames, &expected);
    }
}

fn valid() -> Vec<u8> {
    encode_frame(FrameKind::Group, cluster(), b"hello, world").unwrap()
}

#[test]
fn bad_magic_is_refused() {
    let mut f = valid();
    f[0] = b'X';
    assert_eq!(
        decode_one(&f),
        Err(FrameError::BadMagic { found: *b"XRNF" })
    );
    // An HTTP request or a Galera handshake is refused at its first header.
    let e = decode_one(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n......").unwrap_err();
    assert!(matches!(e, FrameError::BadMagic { .. }), "{e:?}");
    assert_eq!(&MAGIC, b"TRNF");
}

#[test]
fn unsupported_version_is_refused() {
    let mut f = valid();
    f[4] = 2;
    assert_eq!(
        decode_one(&f),
        Err(FrameError::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    );
}

#[test]
fn frame_of_another_cluster_is_refused_before_its_payload_arrives() {
    let f = encode_frame(FrameKind::Group, ClusterHash::of("beta"), &[9; 1000]).unwrap();
    // The header alone is enough to refuse it.
    let e = decode_one(&f[..HEADER_LEN]).unwrap_err();
    assert_eq!(
        e,
        FrameError::WrongCluster {
            expected: cluster(),
            found: ClusterHash::of("beta")
        }
    );
}

#[test]
fn unknown_kind_flags_and_reserved_bits_are_refused() {
    let mut f = valid();
    f[5] = 99;
    assert_eq!(decode_one(&f), Err(FrameError::UnknownKind { found: 99 }));
    let mut f = valid();
    f[6] = 1;
    assert_eq!(decode_one(&f), Err(FrameError::UnknownFlags { found: 1 }));
    let mut f = valid();
    f[21] = 1;
    assert_eq!(
        decode_one(&f),
        Err(FrameError::NonZeroReserved { found: 0x100 })
    );
}

#[test]
fn oversized_frame_is_refused_from_its_header_without_allocating() {
    let mut f = valid();
    f[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut d = decoder();
    let mut frames = Vec::new();
    assert_eq!(
        d.feed(&f[..HEADER_LEN], &mut frames),
        Err(FrameError::TooLarge {
            len: u64::from(u32::MAX),
            limit: LIMIT
        })
    );
    assert_eq!(d.buffered_bytes(), 0);
    // Exactly at the limit is fine.
    let big = encode_frame(
        FrameKind::StateTransfer,
        cluster(),
        &vec![5; LIMIT as usize],
    )
    .unwrap();
    assert_eq!(decode_one(&big).unwrap()[0].payload.len(), LIMIT as usize);
    let over = encode_frame(
        FrameKind::StateTransfer,
        cluster(),
        &vec![5; LIMIT as usize + 1],
    )
    .unwrap();
    assert!(matches!(
        decode_one(&over),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn corrupted_payload_or_checksum_is_refused() {
    let mut f = valid();
    f[HEADER_LEN + 3] ^= 0x20;
    assert!(matches!(
        decode_one(&f),
        Err(FrameError::BadChecksum { .. })
    ));
    let mut f = valid();
    f[24] ^= 1;
    assert!(matches!(
        decode_one(&f),
        Err(FrameError::BadChecksum { .. })
    ));
    // A changed length that stays in bounds is caught by the checksum (the header is hashed).
    let mut f = valid();
    f[16] = 4;
    let mut frames = Vec::new();
    let e = decoder().feed(&f, &mut frames).unwrap_err();
    assert!(
        matches!(
            e,
            FrameError::BadChecksum { .. } | FrameError::NonZeroPadding
        ),
        "{e:?}"
    );
    assert!(frames.is_empty());
}

#[test]
fn non_zero_padding_is_refused() {
    let mut f = valid();
    let last = f.len() - 1;
    f[last] = 1;
    assert_eq!(decode_one(&f), Err(FrameError::NonZeroPadding));
}

#[test]
fn decoder_stays_refusing_after_an_error_but_keeps_frames_before_it() {
    let mut stream = valid();
    let mut bad = valid();
    bad[0] = 0;
    stream.extend_from_slice(&bad);
    stream.extend_from_slice(&valid());
    let mut d = decoder();
    let mut frames = Vec::new();
    assert!(matches!(
        d.feed(&stream, &mut frames),
        Err(FrameError::BadMagic { .. })
    ));
    assert_eq!(
        frames.len(),
        1,
        "the valid frame before the bad one is kept"
    );
    assert!(matches!(
        d.feed(&valid(), &mut frames),
        Err(FrameError::BadMagic { .. })
    ));
    assert_eq!(frames.len(), 1);
}

#[test]
fn random_bytes_never_panic_and_never_yield_a_frame() {
    let mut rng = Rng::from_env("random_bytes_never_panic_and_never_yield_a_frame");
    for _ in 0..2_000 {
        let len = rng.below(4096);
        let bytes = rng.bytes(len);
        let mut d = FrameDecoder::new(cluster(), LIMIT);
        let mut frames = Vec::new();
        let _ = d.feed(&bytes, &mut frames);
        assert!(frames.is_empty());
    }
}

#[test]
fn mutated_streams_never_panic_and_yield_only_original_frames() {
    let mut rng = Rng::from_env("mutated_streams_never_panic_and_yield_only_original_frames");
    let expected: Vec<_> = (0..20)
        .map(|i| (FrameKind::Group, rng.bytes(i * 37)))
        .collect();
    let stream = stream_of(&expected);
    for _ in 0..3_000 {
        let mut s = stream.clone();
        for _ in 0..1 + rng.below(4) {
            match rng.below(3) {
                0 => {
                    let i = rng.below(s.len());
                    s[i] ^= 1 << rng.below(8);
                }
                1 => {
                    let i = rng.below(s.len());
                    s.truncate(i);
                }
                _ => {
                    let i = rng.below(s.len());
                    s.insert(i, rng.next_u64() as u8);
                }
            }
            if s.is_empty() {
                break;
            }
        }
        let mut d = decoder();
        let mut frames = Vec::new();
        let mut rest = &s[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(500)).min(rest.len());
            if d.feed(&rest[..n], &mut frames).is_err() {
                break;
            }
            rest = &rest[n..];
        }
        assert!(frames.len() <= expected.len());
        assert_same(&frames, &expected[..frames.len()]);
    }
}
