//! The MNIST IDX format, gzipped: magic numbers, counts and image sizes are
//! checked, and every failure names the file.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use super::DataError;

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

#[derive(Debug, Clone, Copy)]
pub enum Part {
    Train,
    Test,
}

impl Part {
    fn files(self) -> (&'static str, &'static str, usize) {
        match self {
            Part::Train => (
                "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                60_000,
            ),
            Part::Test => (
                "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
                10_000,
            ),
        }
    }
}

/// Images and labels of one part, as stored: row-major u8 pixels.
#[derive(Debug)]
pub struct Images {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

pub fn read(dir: &Path, part: Part) -> Result<Images, DataError> {
    let (images_file, labels_file, expected) = part.files();
    let images_path = dir.join(images_file);
    let labels_path = dir.join(labels_file);
    let (dims, pixels) = read_idx(&images_path, IMAGES_MAGIC, 3)?;
    let (label_dims, labels) = read_idx(&labels_path, LABELS_MAGIC, 1)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if count != expected {
        return Err(DataError::file(
            &images_path,
            format!("holds {count} images, MNIST has {expected}"),
        ));
    }
    if (rows, cols) != (28, 28) {
        return Err(DataError::file(
            &images_path,
            format!("images are {rows}x{cols}, MNIST's are 28x28"),
        ));
    }
    if label_dims[0] != count {
        return Err(DataError::file(
            &labels_path,
            format!("holds {} labels for {count} images", label_dims[0]),
        ));
    }
    if let Some(bad) = labels.iter().find(|l| **l > 9) {
        return Err(DataError::file(
            &labels_path,
            format!("label {bad} is not a digit 0-9"),
        ));
    }
    Ok(Images {
        count,
        rows,
        cols,
        pixels,
        labels,
    })
}

/// One gzipped IDX file: its dimensions and its unsigned-byte payload.
fn read_idx(path: &Path, magic: u32, ndims: usize) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let file = std::fs::File::open(path).map_err(|e| {
        DataError::file(
            path,
            format!("cannot open ({e}); the dataset folder must hold MNIST's four .gz files"),
        )
    })?;
    let mut bytes = Vec::new();
    GzDecoder::new(std::io::BufReader::new(file))
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::file(path, format!("corrupted gzip data: {e}")))?;
    parse_idx(&bytes, magic, ndims).map_err(|reason| DataError::file(path, reason))
}

fn parse_idx(bytes: &[u8], magic: u32, ndims: usize) -> Result<(Vec<usize>, Vec<u8>), String> {
    let header = 4 * (1 + ndims);
    if bytes.len() < header {
        return Err(format!(
            "truncated: {} bytes, shorter than the {header}-byte IDX header",
            bytes.len()
        ));
    }
    let word = |i: usize| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    if word(0) != magic {
        return Err(format!(
            "bad magic number 0x{:08x}, expected 0x{magic:08x}",
            word(0)
        ));
    }
    let dims: Vec<usize> = (1..=ndims).map(|i| word(i) as usize).collect();
    let expected: usize = dims.iter().product();
    let payload = &bytes[header..];
    if payload.len() < expected {
        return Err(format!(
            "truncated: {} data bytes, the header promises {expected}",
            payload.len()
        ));
    }
    if payload.len() > expected {
        return Err(format!(
            "{} unexpected bytes after the {expected} the header promises",
            payload.len() - expected
        ));
    }
    Ok((dims, payload.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn repo_mnist() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut out = magic.to_be_bytes().to_vec();
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    /// A copy of the real test split in a temp folder, with `name` replaced.
    fn with_file(name: &str, content: &[u8]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            std::fs::copy(repo_mnist().join(f), dir.path().join(f)).unwrap();
        }
        std::fs::write(dir.path().join(name), content).unwrap();
        dir
    }

    fn err(dir: &Path) -> String {
        read(dir, Part::Test).unwrap_err().to_string()
    }

    #[test]
    fn reads_the_real_test_split() {
        let test = read(&repo_mnist(), Part::Test).unwrap();
        assert_eq!((test.count, test.rows, test.cols), (10_000, 28, 28));
        assert_eq!(test.pixels.len(), 10_000 * 784);
        // The first test digit of MNIST is a 7, the second a 2.
        assert_eq!(&test.labels[..3], &[7, 2, 1]);
    }

    #[test]
    fn missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = err(dir.path());
        assert!(e.contains("t10k-images-idx3-ubyte.gz"), "{e}");
        assert!(e.contains("cannot open"), "{e}");
    }

    #[test]
    fn corrupted_gzip_is_named() {
        let mut bytes = std::fs::read(repo_mnist().join("t10k-labels-idx1-ubyte.gz")).unwrap();
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 64] {
            *b ^= 0x5a;
        }
        let dir = with_file("t10k-labels-idx1-ubyte.gz", &bytes);
        let e = err(dir.path());
        assert!(e.contains("t10k-labels-idx1-ubyte.gz"), "{e}");
        assert!(e.contains("corrupted"), "{e}");
    }

    #[test]
    fn truncated_gzip_is_named() {
        let bytes = std::fs::read(repo_mnist().join("t10k-labels-idx1-ubyte.gz")).unwrap();
        let dir = with_file("t10k-labels-idx1-ubyte.gz", &bytes[..bytes.len() / 2]);
        let e = err(dir.path());
        assert!(e.contains("t10k-labels-idx1-ubyte.gz"), "{e}");
    }

    #[test]
    fn truncated_payload_is_reported() {
        let content = gz(&idx(LABELS_MAGIC, &[10_000], &[1; 9_000]));
        let dir = with_file("t10k-labels-idx1-ubyte.gz", &content);
        let e = err(dir.path());
        assert!(e.contains("t10k-labels-idx1-ubyte.gz: truncated"), "{e}");
    }

    #[test]
    fn wrong_magic_is_reported() {
        let content = gz(&idx(IMAGES_MAGIC, &[10_000], &[1; 10_000]));
        let dir = with_file("t10k-labels-idx1-ubyte.gz", &content);
        let e = err(dir.path());
        assert!(e.contains("bad magic number 0x00000803"), "{e}");
    }

    #[test]
    fn count_mismatch_is_reported() {
        let content = gz(&idx(LABELS_MAGIC, &[9_999], &[1; 9_999]));
        let dir = with_file("t10k-labels-idx1-ubyte.gz", &content);
        let e = err(dir.path());
        assert!(e.contains("9999 labels for 10000 images"), "{e}");
    }

    #[test]
    fn wrong_image_size_is_reported() {
        let content = gz(&idx(
            IMAGES_MAGIC,
            &[10_000, 14, 14],
            &vec![0; 10_000 * 196],
        ));
        let dir = with_file("t10k-images-idx3-ubyte.gz", &content);
        let e = err(dir.path());
        assert!(e.contains("14x14"), "{e}");
    }

    #[test]
    fn non_digit_label_is_reported() {
        let content = gz(&idx(LABELS_MAGIC, &[10_000], &[11; 10_000]));
        let dir = with_file("t10k-labels-idx1-ubyte.gz", &content);
        assert!(err(dir.path()).contains("label 11"));
    }
}
