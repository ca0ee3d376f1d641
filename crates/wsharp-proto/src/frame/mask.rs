/// XORs `buf` with `key` (RFC 6455 §5.3); `buf` starts `offset` bytes into the payload, so a
/// payload can be unmasked piece by piece as it arrives. Works 64 bytes at a time, with AVX2
/// when the CPU has it (checked once at run time).
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // The key as it lines up with `buf[0]`: rotated by the offset, on an integer.
    let key = (u32::from_le_bytes(key).rotate_right(8 * (offset % 4) as u32)).to_le_bytes();
    #[cfg(target_arch = "x86_64")]
    if buf.len() >= 256 && std::is_x86_feature_detected!("avx2") {
        #[allow(
            unsafe_code,
            reason = "a target_feature function is unsafe to call; the CPU check makes it sound"
        )]
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe {
            mask_avx2(buf, key);
        }
        return;
    }
    mask_blocks(buf, key);
}

/// [`mask_blocks`] compiled for AVX2 (32-byte vectors instead of SSE2's 16).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mask_avx2(buf: &mut [u8], key: [u8; 4]) {
    mask_blocks(buf, key);
}

/// The mask loop, shaped for the compiler to vectorize: whole 64-byte blocks, then 8-byte
/// words, then bytes.
#[inline(always)]
fn mask_blocks(buf: &mut [u8], key: [u8; 4]) {
    let rest = if buf.len() >= 64 {
        let block_key: [u8; 64] = std::array::from_fn(|i| key[i % 4]);
        let mut blocks = buf.chunks_exact_mut(64);
        for block in &mut blocks {
            for (b, k) in block.iter_mut().zip(block_key) {
                *b ^= k;
            }
        }
        blocks.into_remainder()
    } else {
        buf
    };
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = rest.chunks_exact_mut(8);
    for word in &mut words {
        let masked = u64::from_ne_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]) ^ wide;
        word.copy_from_slice(&masked.to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::apply_mask;

    fn bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(i + offset) % 4];
        }
    }

    #[test]
    fn matches_the_bytewise_definition_at_every_offset_and_length() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in (0..300).chain([1000, 1023, 4099]) {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(31)).collect();
                let (mut a, mut b) = (data.clone(), data);
                apply_mask(&mut a, key, offset);
                bytewise(&mut b, key, offset);
                assert_eq!(a, b, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn unmasking_in_pieces_equals_unmasking_at_once() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..100u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = data;
        let (a, rest) = pieces.split_at_mut(13);
        let (b, c) = rest.split_at_mut(50);
        apply_mask(a, key, 0);
        apply_mask(b, key, 13);
        apply_mask(c, key, 63);
        assert_eq!(whole, pieces);
    }
}
