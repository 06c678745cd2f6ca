import Foundation

/// Both splits of a dataset, read from one directory.
public struct Dataset: Sendable {
    public let kind: DatasetKind
    /// The directory the four files were read from.
    public let directory: String
    public let train: DataSplit
    public let test: DataSplit

    /// Finds (and, if `download` is true, downloads) and loads the data. Search order:
    /// explicit dataDirectory (DIR itself, then DIR/MNIST/raw — for fashion
    /// DIR/FashionMNIST/raw), else ./data the same way, and for fashion-mnist also
    /// /usr/share/datasets/fashion-mnist. Downloads go to DIR/MNIST/raw (or ./data/MNIST/raw).
    public static func load(kind: DatasetKind = .mnist, dataDirectory: String?, download: Bool, progress: ((String) -> Void)? = nil) throws -> Dataset {
        try load(kind: kind, dataDirectory: dataDirectory, downloader: download ? Downloader(kind: kind) : nil, progress: progress)
    }

    /// As above, downloading missing files with `downloader` (nil: never download).
    public static func load(kind: DatasetKind = .mnist, dataDirectory: String?, downloader: Downloader?, progress: ((String) -> Void)? = nil) throws -> Dataset {
        let location = try locate(kind: kind, dataDirectory: dataDirectory, downloader: downloader, progress: progress)
        let paths = location.paths
        return Dataset(
            kind: kind,
            directory: location.directory,
            train: try DataSplit(name: "train", imagesPath: paths[0], labelsPath: paths[1]),
            test: try DataSplit(name: "test", imagesPath: paths[2], labelsPath: paths[3])
        )
    }

    /// Where the data should be downloaded to: DIR/MNIST/raw, or ./data/MNIST/raw.
    public static func downloadDirectory(kind: DatasetKind, dataDirectory: String?) -> String {
        (dataDirectory ?? "./data") + "/" + kind.torchvisionFolder + "/raw"
    }

    /// The directories searched, in order.
    public static func searchDirectories(kind: DatasetKind, dataDirectory: String?) -> [String] {
        let root = dataDirectory ?? "./data"
        return [root, downloadDirectory(kind: kind, dataDirectory: dataDirectory)]
            + (dataDirectory == nil ? kind.systemDirectories : [])
    }

    /// The first searched directory holding all four files, under any accepted name.
    public static func find(kind: DatasetKind, dataDirectory: String?) -> DataLocation? {
        for directory in searchDirectories(kind: kind, dataDirectory: dataDirectory) {
            if let paths = filePaths(kind: kind, in: directory) { return DataLocation(directory: directory, paths: paths) }
        }
        return nil
    }

    /// Finds the files, downloading the missing ones when a downloader is given.
    public static func locate(kind: DatasetKind, dataDirectory: String?, downloader: Downloader?, progress: ((String) -> Void)? = nil) throws -> DataLocation {
        if let found = find(kind: kind, dataDirectory: dataDirectory) { return found }
        let target = downloadDirectory(kind: kind, dataDirectory: dataDirectory)
        let missing = kind.files.filter { file in
            !file.acceptedNames.contains { LocalFile.isRegularFile(target + "/" + $0) }
        }
        let byHand = "put \(missing.map(\.downloadName).joined(separator: ", ")) from \(kind.mirrors[0]) into \(target)"
        guard let downloader else {
            let looked = searchDirectories(kind: kind, dataDirectory: dataDirectory).joined(separator: ", ")
            throw DataError(file: target, "\(kind.rawValue) files not found (looked in \(looked)); \(byHand)")
        }
        for file in missing {
            do {
                try downloader.download(file.downloadName, checksums: file.checksums, into: target, log: progress)
            } catch let error as DataError {
                throw DataError(file: error.file, "\(error.message); without network, \(byHand)")
            }
        }
        guard let paths = filePaths(kind: kind, in: target) else {
            throw DataError(file: target, "files still missing after download")
        }
        return DataLocation(directory: target, paths: paths)
    }

    /// Paths of the four files in `directory` (kind.files order), or nil if any is missing.
    static func filePaths(kind: DatasetKind, in directory: String) -> [String]? {
        var paths: [String] = []
        for file in kind.files {
            guard let name = file.acceptedNames.first(where: { LocalFile.isRegularFile(directory + "/" + $0) }) else { return nil }
            paths.append(directory + "/" + name)
        }
        return paths
    }
}

/// Where a dataset's four files are.
public struct DataLocation: Sendable, Equatable {
    public let directory: String
    /// Train images, train labels, test images, test labels (`DatasetKind.files` order).
    public let paths: [String]
}
