/// Which IDX dataset to read: both share the MNIST file names and format.
public enum DatasetKind: String, CaseIterable, Sendable {
    case mnist
    case fashionMNIST = "fashion-mnist"

    /// torchvision's folder name under the data root (`DIR/MNIST/raw`).
    public var torchvisionFolder: String {
        switch self {
        case .mnist: "MNIST"
        case .fashionMNIST: "FashionMNIST"
        }
    }

    /// Public mirrors, tried in order; each serves the four `.gz` files.
    public var mirrors: [String] {
        switch self {
        case .mnist:
            ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
        case .fashionMNIST:
            ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
        }
    }

    /// Directories searched after `--data-dir` / `./data` (system-wide installs).
    public var systemDirectories: [String] {
        switch self {
        case .mnist: []
        case .fashionMNIST: ["/usr/share/datasets/fashion-mnist"]  // Debian's dataset-fashion-mnist
        }
    }

    /// Human-readable class names, index = label.
    public var classNames: [String] {
        switch self {
        case .mnist:
            (0...9).map(String.init)
        case .fashionMNIST:
            ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        }
    }

    /// The four files of this dataset, train images first.
    public var files: [DataFile] {
        let (trainImages, trainLabels, testImages, testLabels): (Checksums, Checksums, Checksums, Checksums)
        switch self {
        case .mnist:
            // Compressed MD5s as the mirrors serve them; content MD5s of the IDX bytes
            // (see shared/mnist/README.md: a recompressed .gz still matches the latter).
            trainImages = Checksums(compressed: "f68b3c2dcbeaaa9fbdd348bbdeb94873", content: "6bbc9ace898e44ae57da46a324031adb")
            trainLabels = Checksums(compressed: "d53e105ee54ea40749a09fcbcd1e9432", content: "a25bea736e30d166cdddb491f175f624")
            testImages = Checksums(compressed: "9fb629c4189551a2d022fa330f9573f3", content: "2646ac647ad5339dbf082846283269ea")
            testLabels = Checksums(compressed: "ec29112dd5afa0611ce80d1b7f02629c", content: "27ae3e4e09519cfbb04c329615203637")
        case .fashionMNIST:
            // Zalando publishes only the compressed MD5s.
            trainImages = Checksums(compressed: "8d4fb7e6c68d591d4c3dfef9ec88bf0d", content: nil)
            trainLabels = Checksums(compressed: "25c81989df183df01b3e8a0aad5dffbe", content: nil)
            testImages = Checksums(compressed: "bef4ecab320f06d8554ea6380940ec79", content: nil)
            testLabels = Checksums(compressed: "bb300cfdad3c16e7a12a480ee83cd310", content: nil)
        }
        return [
            DataFile(split: "train", kind: .images, checksums: trainImages),
            DataFile(split: "train", kind: .labels, checksums: trainLabels),
            DataFile(split: "test", kind: .images, checksums: testImages),
            DataFile(split: "test", kind: .labels, checksums: testLabels),
        ]
    }
}

/// Known MD5s of one file, lowercase hex.
public struct Checksums: Sendable, Equatable {
    /// Of the `.gz` file as the public mirrors serve it.
    public let compressed: String
    /// Of the decompressed IDX bytes, where known.
    public let content: String?

    public init(compressed: String, content: String?) {
        self.compressed = compressed
        self.content = content
    }
}

/// One of the four files of a dataset, with the names it may go by.
public struct DataFile: Sendable, Equatable {
    public enum Kind: Sendable { case images, labels }

    public let split: String  // "train" or "test"
    public let kind: Kind
    public let checksums: Checksums

    /// `train`/`t10k`, as in the IDX file names.
    private var stem: String { split == "train" ? "train" : "t10k" }
    private var part: String { kind == .images ? "images" : "labels" }
    private var idxType: String { kind == .images ? "idx3-ubyte" : "idx1-ubyte" }

    /// The name the mirrors serve (`train-images-idx3-ubyte.gz`).
    public var downloadName: String { "\(stem)-\(part)-\(idxType).gz" }

    /// Every name accepted on disk, preferred first: both namings in use
    /// (`train-images-idx3-ubyte`, `train-images.idx3-ubyte`), each raw or `.gz`.
    public var acceptedNames: [String] {
        let dashed = "\(stem)-\(part)-\(idxType)"
        let dotted = "\(stem)-\(part).\(idxType)"
        return [dashed + ".gz", dashed, dotted + ".gz", dotted]
    }
}
