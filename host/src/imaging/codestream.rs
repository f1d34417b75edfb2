//! Image dimensions read from JPEG and JPEG 2000 codestreams embedded in DICOM pixel data.
//!
//! The DICOM pixel data decoders size their output buffer from Rows and Columns but let the
//! codec allocate from the codestream's own header, and they index out of bounds when the two
//! disagree. Reading the codestream header first lets rfo reject such files before decoding.

/// Width, height and component count declared by a codestream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CodestreamSize {
    pub width: u32,
    pub height: u32,
    pub components: u16,
}

/// JPEG 2000 start of codestream (SOC) followed by the image and tile size marker (SIZ).
const J2K_SOC_SIZ: [u8; 4] = [0xFF, 0x4F, 0xFF, 0x51];

/// Reads the SIZ marker segment of a JPEG 2000 codestream (ITU-T T.800 A.5.1).
///
/// The codestream may be bare or wrapped in a JP2 file, so the first SOC followed by SIZ is
/// searched for rather than expected at offset 0.
pub(super) fn jpeg2000_size(data: &[u8]) -> Option<CodestreamSize> {
    let start = data.windows(4).position(|w| w == J2K_SOC_SIZ)?;
    // After SOC and the SIZ marker: Lsiz (2), Rsiz (2), Xsiz, Ysiz, XOsiz, YOsiz (4 each),
    // the four tile sizes and offsets (4 each), then Csiz (2).
    let siz = data.get(start + 4..)?;
    let x_size = read_u32(siz, 4)?;
    let y_size = read_u32(siz, 8)?;
    let x_offset = read_u32(siz, 12)?;
    let y_offset = read_u32(siz, 16)?;
    let components = read_u16(siz, 36)?;
    Some(CodestreamSize {
        width: x_size.checked_sub(x_offset)?,
        height: y_size.checked_sub(y_offset)?,
        components,
    })
}

/// Reads the frame header (SOFn) of a JPEG codestream (ITU-T T.81 B.2.2), walking the marker
/// segments that precede it.
pub(super) fn jpeg_size(data: &[u8]) -> Option<CodestreamSize> {
    if data.get(0..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut pos = 2;
    loop {
        if *data.get(pos)? != 0xFF {
            return None;
        }
        let marker = *data.get(pos + 1)?;
        // 0xFF bytes before a marker are fill bytes.
        if marker == 0xFF {
            pos += 1;
            continue;
        }
        let length = usize::from(read_u16(data, pos + 2)?);
        if is_start_of_frame(marker) {
            let segment = data.get(pos + 4..)?;
            return Some(CodestreamSize {
                height: u32::from(read_u16(segment, 1)?),
                width: u32::from(read_u16(segment, 3)?),
                components: u16::from(*segment.get(5)?),
            });
        }
        pos += 2 + length;
    }
}

/// SOF0 to SOF15, leaving out DHT (C4), JPG (C8) and DAC (CC), which share the range.
fn is_start_of_frame(marker: u8) -> bool {
    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

fn read_u16(data: &[u8], offset: usize) -> Option<u16> {
    let bytes = data.get(offset..offset + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

fn read_u32(data: &[u8], offset: usize) -> Option<u32> {
    let bytes = data.get(offset..offset + 4)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_size_skips_segments_before_frame_header() {
        let mut data = vec![0xFF, 0xD8];
        // APP0 segment with 4 payload bytes, then SOF1 with P=12, Y=300, X=200, Nf=1.
        data.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x06, 1, 2, 3, 4]);
        data.extend_from_slice(&[0xFF, 0xC1, 0x00, 0x0B, 12, 0x01, 0x2C, 0x00, 0xC8, 1]);

        let size = jpeg_size(&data).unwrap();

        assert_eq!(size.width, 200);
        assert_eq!(size.height, 300);
        assert_eq!(size.components, 1);
    }

    #[test]
    fn jpeg_size_of_truncated_header_is_none() {
        assert_eq!(jpeg_size(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00]), None);
        assert_eq!(jpeg_size(&[0xFF, 0xD8]), None);
        assert_eq!(jpeg_size(&[]), None);
    }

    #[test]
    fn jpeg2000_size_subtracts_image_offset() {
        let mut data = vec![0x00, 0x01];
        data.extend_from_slice(&J2K_SOC_SIZ);
        data.extend_from_slice(&[0x00, 0x29, 0x00, 0x00]); // Lsiz, Rsiz
        for value in [1010u32, 2020, 10, 20, 1010, 2020, 0, 0] {
            data.extend_from_slice(&value.to_be_bytes());
        }
        data.extend_from_slice(&[0x00, 0x01]); // Csiz

        let size = jpeg2000_size(&data).unwrap();

        assert_eq!(size.width, 1000);
        assert_eq!(size.height, 2000);
        assert_eq!(size.components, 1);
    }

    #[test]
    fn jpeg2000_size_without_siz_is_none() {
        assert_eq!(jpeg2000_size(&[0xFF, 0x4F, 0xFF, 0x90]), None);
    }
}
