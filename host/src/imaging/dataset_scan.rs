//! A walk over the element headers of a DICOM file that rejects value lengths larger than the
//! input, before dicom-object parses it.
//!
//! dicom-parser 0.10 allocates and zero-fills each value at its declared length before reading
//! it. A file of under 200 bytes that declared a 4 GiB element took 12 s and 4 GiB of memory
//! to fail (release build). This walk reads only headers and skips values, so it costs little
//! even on large files.
//!
//! The walk is conservative. Some structures it does not follow: a deflated data set, and a UN
//! element of undefined length, whose contents switch to implicit VR. On meeting one it stops
//! and leaves the rest to the parser rather than risk rejecting a valid file.

use super::{DecodeError, SourceFormat};

const UNDEFINED_LENGTH: u32 = 0xFFFF_FFFF;
const ITEM_GROUP: u16 = 0xFFFE;
const ITEM: u16 = 0xE000;
const ITEM_DELIMITER: u16 = 0xE00D;
const SEQUENCE_DELIMITER: u16 = 0xE0DD;
const PIXEL_DATA: (u16, u16) = (0x7FE0, 0x0010);

const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1.99";

/// Value representations whose explicit VR header has a 4-byte length (PS3.5 7.1.2).
const LONG_LENGTH_VRS: &[&[u8; 2]] = &[
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    ExplicitLittle,
    ExplicitBig,
    ImplicitLittle,
}

/// Checks every declared length in a DICOM file whose bytes start at the "DICM" prefix.
///
/// # Errors
///
/// [`DecodeError::Invalid`] naming the first element whose declared length exceeds the bytes
/// left in the input.
pub(super) fn check_declared_lengths(file: &[u8]) -> Result<(), DecodeError> {
    let mut walker = Walker {
        data: file,
        pos: 4,
        encoding: Encoding::ExplicitLittle,
        in_fragments: false,
    };

    let transfer_syntax = walker.walk_meta_group()?;
    walker.encoding = match transfer_syntax.as_deref() {
        Some(IMPLICIT_VR_LITTLE_ENDIAN) => Encoding::ImplicitLittle,
        Some(EXPLICIT_VR_BIG_ENDIAN) => Encoding::ExplicitBig,
        // NOTE: a deflated data set is not checked, because its lengths refer to the inflated
        // bytes. The parser then allocates whatever the inflated headers declare.
        Some(DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN) => return Ok(()),
        // Every other transfer syntax, compressed ones included, is explicit VR little endian.
        _ => Encoding::ExplicitLittle,
    };
    walker.walk_data_set()
}

struct Walker<'a> {
    data: &'a [u8],
    pos: usize,
    encoding: Encoding,
    /// Inside encapsulated pixel data, whose items hold codestream fragments, not data sets.
    in_fragments: bool,
}

/// Outcome of reading one header.
enum Step {
    Continue,
    /// The walk met a structure it does not follow; the parser takes over from here.
    Stop,
}

impl Walker<'_> {
    /// Walks group 0002, which is always explicit VR little endian, and returns the Transfer
    /// Syntax UID when it is present.
    fn walk_meta_group(&mut self) -> Result<Option<String>, DecodeError> {
        let mut transfer_syntax = None;
        while self.remaining() >= 8 && self.u16_at(self.pos) == Some(0x0002) {
            let element = self.u16_at(self.pos + 2).unwrap_or_default();
            let Some((header_len, length)) = self.explicit_header() else {
                break;
            };
            self.pos += header_len;
            if length == UNDEFINED_LENGTH {
                break;
            }
            self.check_fits((0x0002, element), length)?;
            let value = &self.data[self.pos..self.pos + length as usize];
            if element == 0x0010 {
                let uid = String::from_utf8_lossy(value);
                transfer_syntax = Some(uid.trim_end_matches(['\0', ' ']).to_owned());
            }
            self.pos += length as usize;
        }
        Ok(transfer_syntax)
    }

    fn walk_data_set(&mut self) -> Result<(), DecodeError> {
        // Fewer than 8 bytes cannot hold a header; the parser reports such truncation itself.
        while self.remaining() >= 8 {
            let step = self.step()?;
            if let Step::Stop = step {
                break;
            }
        }
        Ok(())
    }

    /// Reads one element, item or delimiter header, skipping values that cannot contain
    /// further headers.
    fn step(&mut self) -> Result<Step, DecodeError> {
        let group = self.header_u16(self.pos).unwrap_or_default();
        let element = self.header_u16(self.pos + 2).unwrap_or_default();
        let tag = (group, element);

        if group == ITEM_GROUP {
            let length = self.header_u32(self.pos + 4).unwrap_or_default();
            self.pos += 8;
            return match element {
                // Items of encapsulated pixel data hold fragments, which are skipped. Other
                // items hold data sets, which are walked like the top level.
                ITEM if length != UNDEFINED_LENGTH => {
                    self.check_fits(tag, length)?;
                    if self.in_fragments {
                        self.pos += length as usize;
                    }
                    Ok(Step::Continue)
                }
                ITEM | ITEM_DELIMITER => Ok(Step::Continue),
                SEQUENCE_DELIMITER => {
                    self.in_fragments = false;
                    Ok(Step::Continue)
                }
                _ => Ok(Step::Stop),
            };
        }

        let (header_len, length, vr) = match self.encoding {
            Encoding::ImplicitLittle => {
                (8, self.header_u32(self.pos + 4).unwrap_or_default(), None)
            }
            Encoding::ExplicitLittle | Encoding::ExplicitBig => match self.explicit_header() {
                Some((header_len, length)) => {
                    let vr = [self.data[self.pos + 4], self.data[self.pos + 5]];
                    (header_len, length, Some(vr))
                }
                None => return Ok(Step::Stop),
            },
        };
        self.pos += header_len;

        if length == UNDEFINED_LENGTH {
            if tag == PIXEL_DATA {
                self.in_fragments = true;
            } else if vr == Some(*b"UN") {
                // The contents are implicit VR little endian, which this walk does not track.
                return Ok(Step::Stop);
            }
            // A sequence of undefined length: its items follow.
            return Ok(Step::Continue);
        }

        self.check_fits(tag, length)?;
        let is_sequence = match vr {
            Some(vr) => &vr == b"SQ",
            None => self.starts_with_item(length),
        };
        if !is_sequence {
            self.pos += length as usize;
        }
        Ok(Step::Continue)
    }

    /// Reads an explicit VR header at the current position and returns its size and the value
    /// length, or `None` when the VR is not two uppercase letters.
    fn explicit_header(&self) -> Option<(usize, u32)> {
        let vr = self.data.get(self.pos + 4..self.pos + 6)?;
        if !vr.iter().all(u8::is_ascii_uppercase) {
            return None;
        }
        if LONG_LENGTH_VRS.iter().any(|long| long[..] == *vr) {
            Some((12, self.header_u32(self.pos + 8)?))
        } else {
            Some((8, u32::from(self.header_u16(self.pos + 6)?)))
        }
    }

    /// Tells whether an implicit VR value of `length` bytes at the current position is a
    /// sequence: it then starts with an item header whose length fits inside the value.
    fn starts_with_item(&self, length: u32) -> bool {
        if length < 8 {
            return false;
        }
        let item_tag = (self.header_u16(self.pos), self.header_u16(self.pos + 2));
        let item_length = self.header_u32(self.pos + 4).unwrap_or(UNDEFINED_LENGTH);
        item_tag == (Some(ITEM_GROUP), Some(ITEM))
            && (item_length == UNDEFINED_LENGTH || item_length <= length - 8)
    }

    /// Checks a value of `length` bytes that starts at the current position.
    fn check_fits(&self, (group, element): (u16, u16), length: u32) -> Result<(), DecodeError> {
        let remaining = self.remaining();
        if u64::from(length) > remaining as u64 {
            return Err(DecodeError::invalid(
                SourceFormat::Dicom,
                format!(
                    "element ({group:04X},{element:04X}) declares a value of {length} bytes, but \
                     only {remaining} bytes follow it"
                ),
            ));
        }
        Ok(())
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn u16_at(&self, offset: usize) -> Option<u16> {
        let bytes = self.data.get(offset..offset + 2)?;
        Some(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    fn header_u16(&self, offset: usize) -> Option<u16> {
        let bytes: [u8; 2] = self.data.get(offset..offset + 2)?.try_into().ok()?;
        Some(match self.encoding {
            Encoding::ExplicitBig => u16::from_be_bytes(bytes),
            _ => u16::from_le_bytes(bytes),
        })
    }

    fn header_u32(&self, offset: usize) -> Option<u32> {
        let bytes: [u8; 4] = self.data.get(offset..offset + 4)?.try_into().ok()?;
        Some(match self.encoding {
            Encoding::ExplicitBig => u32::from_be_bytes(bytes),
            _ => u32::from_le_bytes(bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit(out: &mut Vec<u8>, (group, element): (u16, u16), vr: &[u8; 2], value: &[u8]) {
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(vr);
        if LONG_LENGTH_VRS.contains(&vr) {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(value);
    }

    /// Appends a header with a raw 32-bit length: an implicit VR element, an item or a
    /// delimiter.
    fn raw_header(out: &mut Vec<u8>, (group, element): (u16, u16), length: u32) {
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(&length.to_le_bytes());
    }

    fn file_with_transfer_syntax(uid: &str) -> Vec<u8> {
        let mut file = b"DICM".to_vec();
        explicit(
            &mut file,
            (0x0002, 0x0010),
            b"UI",
            format!("{uid}\0").as_bytes(),
        );
        file
    }

    #[test]
    fn huge_element_in_explicit_sequence_item_is_rejected() {
        let mut file = file_with_transfer_syntax("1.2.840.10008.1.2.1");
        let mut item = Vec::new();
        explicit(&mut item, (0x0008, 0x0100), b"SH", b"CODE01");
        // OB header declaring 4 GiB with nothing after it.
        item.extend_from_slice(&[0x09, 0x00, 0x10, 0x00, b'O', b'B', 0, 0]);
        item.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let mut sequence = Vec::new();
        raw_header(&mut sequence, (ITEM_GROUP, ITEM), item.len() as u32);
        sequence.extend_from_slice(&item);
        explicit(&mut file, (0x0008, 0x1032), b"SQ", &sequence);

        let error = check_declared_lengths(&file).unwrap_err();

        assert!(error.to_string().contains("(0009,0010)"), "{error}");
    }

    #[test]
    fn huge_element_in_implicit_sequence_is_rejected() {
        let mut file = file_with_transfer_syntax(IMPLICIT_VR_LITTLE_ENDIAN);
        raw_header(&mut file, (0x0008, 0x1032), UNDEFINED_LENGTH);
        raw_header(&mut file, (ITEM_GROUP, ITEM), UNDEFINED_LENGTH);
        raw_header(&mut file, (0x0008, 0x0104), 0x7FFF_0000);

        assert!(check_declared_lengths(&file).is_err());
    }

    #[test]
    fn valid_implicit_file_with_sequences_passes() {
        let mut file = file_with_transfer_syntax(IMPLICIT_VR_LITTLE_ENDIAN);
        // A defined-length sequence with one item holding one element.
        let mut item = Vec::new();
        raw_header(&mut item, (0x0008, 0x0100), 6);
        item.extend_from_slice(b"CODE01");
        let mut sequence = Vec::new();
        raw_header(&mut sequence, (ITEM_GROUP, ITEM), item.len() as u32);
        sequence.extend_from_slice(&item);
        raw_header(&mut file, (0x0008, 0x1032), sequence.len() as u32);
        file.extend_from_slice(&sequence);
        // An undefined-length sequence with an empty item and both delimiters.
        raw_header(&mut file, (0x0008, 0x1140), UNDEFINED_LENGTH);
        raw_header(&mut file, (ITEM_GROUP, ITEM), UNDEFINED_LENGTH);
        raw_header(&mut file, (ITEM_GROUP, ITEM_DELIMITER), 0);
        raw_header(&mut file, (ITEM_GROUP, SEQUENCE_DELIMITER), 0);
        raw_header(&mut file, (0x0028, 0x0010), 2);
        file.extend_from_slice(&512u16.to_le_bytes());

        assert!(check_declared_lengths(&file).is_ok());
    }

    #[test]
    fn encapsulated_fragments_are_skipped_and_checked() {
        let mut file = file_with_transfer_syntax("1.2.840.10008.1.2.4.90");
        file.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0]);
        file.extend_from_slice(&UNDEFINED_LENGTH.to_le_bytes());
        raw_header(&mut file, (ITEM_GROUP, ITEM), 0);
        // A fragment whose bytes look like a huge item header must not be walked into.
        raw_header(&mut file, (ITEM_GROUP, ITEM), 8);
        raw_header(&mut file, (ITEM_GROUP, ITEM), 0x7FFF_FFFF);
        raw_header(&mut file, (ITEM_GROUP, SEQUENCE_DELIMITER), 0);

        assert!(check_declared_lengths(&file).is_ok());

        let mut truncated = file_with_transfer_syntax("1.2.840.10008.1.2.4.90");
        truncated.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0]);
        truncated.extend_from_slice(&UNDEFINED_LENGTH.to_le_bytes());
        raw_header(&mut truncated, (ITEM_GROUP, ITEM), 1000);
        truncated.extend_from_slice(&[0; 10]);

        assert!(check_declared_lengths(&truncated).is_err());
    }

    #[test]
    fn deflated_data_set_is_left_to_the_parser() {
        let mut file = file_with_transfer_syntax(DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN);
        file.extend_from_slice(&[0xFF; 64]);

        assert!(check_declared_lengths(&file).is_ok());
    }
}
