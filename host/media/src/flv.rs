//! FLV tag bodies for RTMP: the encoder gives H.264 in Annex B (start codes) and AAC raw
//! frames; RTMP carries FLV video/audio tag bodies, i.e. an AVC decoder configuration record
//! and length-prefixed NAL units behind a small header. These few framing rules are all the
//! container work the RTMP outputs need, so they live here rather than in a muxer.

use bytes::{BufMut, Bytes, BytesMut};

/// FLV codec id of H.264.
pub const FLV_CODEC_AVC: u32 = 7;
/// FLV codec id of AAC.
pub const FLV_CODEC_AAC: u32 = 10;

/// Why codec headers could not be turned into FLV.
#[derive(Debug, thiserror::Error)]
pub enum FlvError {
    /// The encoder's extradata lacks an SPS or PPS.
    #[error("H.264 extradata has no {0}")]
    MissingParameterSet(&'static str),
}

/// Splits Annex B data into NAL units (without start codes).
pub fn annex_b_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        // Skip to just after the next start code.
        loop {
            if rest.len() < 3 {
                return None;
            }
            if rest[0] == 0 && rest[1] == 0 && rest[2] == 1 {
                rest = &rest[3..];
                break;
            }
            if rest.len() >= 4 && rest[..4] == [0, 0, 0, 1] {
                rest = &rest[4..];
                break;
            }
            rest = &rest[1..];
        }
        let end = (0..rest.len().saturating_sub(2))
            .find(|&i| {
                rest[i] == 0
                    && rest[i + 1] == 0
                    && (rest[i + 2] == 1 || (rest[i + 2] == 0 && rest.get(i + 3) == Some(&1)))
            })
            .unwrap_or(rest.len());
        let (nal, tail) = rest.split_at(end);
        rest = tail;
        // Trailing zero bytes belong to the next start code, not this NAL.
        let trimmed = nal
            .iter()
            .rposition(|&b| b != 0)
            .map_or(&nal[..0], |p| &nal[..=p]);
        Some(trimmed)
    })
    .filter(|n| !n.is_empty())
}

/// The FLV body of the AVC sequence header (an `AVCDecoderConfigurationRecord`) built from
/// the SPS and PPS in Annex B `extradata`.
pub fn avc_sequence_header(extradata: &[u8]) -> Result<Bytes, FlvError> {
    let mut sps = None;
    let mut pps = None;
    for nal in annex_b_nals(extradata) {
        match nal[0] & 0x1f {
            7 if sps.is_none() => sps = Some(nal),
            8 if pps.is_none() => pps = Some(nal),
            _ => {}
        }
    }
    let sps = sps.ok_or(FlvError::MissingParameterSet("SPS"))?;
    let pps = pps.ok_or(FlvError::MissingParameterSet("PPS"))?;
    if sps.len() < 4 {
        return Err(FlvError::MissingParameterSet("complete SPS"));
    }
    let mut b = BytesMut::with_capacity(16 + sps.len() + pps.len());
    b.put_slice(&[0x17, 0x00, 0, 0, 0]); // keyframe + AVC, sequence header, cts 0
    b.put_u8(1); // configurationVersion
    b.put_slice(&sps[1..4]); // profile, compatibility, level
    b.put_u8(0xff); // 4-byte NAL lengths
    b.put_u8(0xe1); // one SPS
    b.put_u16(sps.len() as u16);
    b.put_slice(sps);
    b.put_u8(1); // one PPS
    b.put_u16(pps.len() as u16);
    b.put_slice(pps);
    Ok(b.freeze())
}

/// The FLV body of one coded H.264 frame: Annex B in, length-prefixed NALs out.
/// Parameter sets and AUDs are left out: they travel in the sequence header.
pub fn avc_frame(annex_b: &[u8], keyframe: bool, cts_ms: i32) -> Bytes {
    let mut b = BytesMut::with_capacity(annex_b.len() + 16);
    b.put_u8(if keyframe { 0x17 } else { 0x27 });
    b.put_u8(1);
    let cts = cts_ms.to_be_bytes();
    b.put_slice(&cts[1..4]);
    for nal in annex_b_nals(annex_b) {
        if matches!(nal[0] & 0x1f, 7..=9) {
            continue;
        }
        b.put_u32(nal.len() as u32);
        b.put_slice(nal);
    }
    b.freeze()
}

/// FLV audio header byte: AAC, 44 kHz flag, 16 bit, stereo (FLV's fixed values for AAC).
const AAC_HEADER: u8 = 0xaf;

/// The FLV body of the AAC sequence header (the `AudioSpecificConfig`).
pub fn aac_sequence_header(audio_specific_config: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(2 + audio_specific_config.len());
    b.put_u8(AAC_HEADER);
    b.put_u8(0);
    b.put_slice(audio_specific_config);
    b.freeze()
}

/// The FLV body of one raw AAC frame.
pub fn aac_frame(raw: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(2 + raw.len());
    b.put_u8(AAC_HEADER);
    b.put_u8(1);
    b.put_slice(raw);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb];

    fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for (i, n) in nals.iter().enumerate() {
            v.extend_from_slice(if i % 2 == 0 {
                &[0, 0, 0, 1][..]
            } else {
                &[0, 0, 1][..]
            });
            v.extend_from_slice(n);
        }
        v
    }

    #[test]
    fn splits_both_start_code_lengths() {
        let data = annex_b(&[SPS, PPS, &[0x65, 0, 0, 3, 1, 0x80]]);
        let nals: Vec<_> = annex_b_nals(&data).collect();
        assert_eq!(nals, vec![SPS, PPS, &[0x65, 0, 0, 3, 1, 0x80][..]]);
    }

    #[test]
    fn sequence_header_is_an_avcc_record() {
        let hdr = avc_sequence_header(&annex_b(&[SPS, PPS])).unwrap();
        assert_eq!(&hdr[..5], &[0x17, 0, 0, 0, 0]);
        assert_eq!(&hdr[5..11], &[1, 0x64, 0x00, 0x1f, 0xff, 0xe1]);
        assert_eq!(&hdr[11..13], &[0, SPS.len() as u8]);
        assert!(avc_sequence_header(&annex_b(&[SPS])).is_err());
    }

    #[test]
    fn frames_are_length_prefixed_without_parameter_sets() {
        let idr = [0x65u8, 0x88, 0x84];
        let body = avc_frame(&annex_b(&[SPS, PPS, &idr]), true, 0);
        assert_eq!(&body[..], &[0x17, 1, 0, 0, 0, 0, 0, 0, 3, 0x65, 0x88, 0x84]);
    }
}
