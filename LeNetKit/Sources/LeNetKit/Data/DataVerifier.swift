/// The outcome of checking one data file.
public struct DataFileCheck: Sendable {
    public let path: String
    /// What the check found, e.g. `60000 images, MD5 of content matches`.
    public let summary: String
    /// Nil when the file passed.
    public let problem: DataError?
}

extension Dataset {
    /// Checks each of the four files found for `kind`: its checksum (the MD5 of the
    /// decompressed IDX content where known, else of the `.gz` as published), its
    /// structure, and that images and labels pair up. Throws only when the files
    /// cannot be found; per-file problems are reported in the result.
    public static func verify(kind: DatasetKind = .mnist, dataDirectory: String?) throws -> [DataFileCheck] {
        let location = try locate(kind: kind, dataDirectory: dataDirectory, downloader: nil)
        var counts: [Int?] = []
        var checks: [DataFileCheck] = []
        for (file, path) in zip(kind.files, location.paths) {
            do {
                let (count, checksum) = try checkFile(file, path: path)
                counts.append(count)
                let what = file.kind == .images ? "images" : "labels"
                checks.append(DataFileCheck(path: path, summary: "\(count) \(what), \(checksum)", problem: nil))
            } catch {
                counts.append(nil)
                let problem = error as? DataError ?? DataError(file: path, "\(error)")
                checks.append(DataFileCheck(path: path, summary: "failed", problem: problem))
            }
        }
        // Pairs (train images, train labels), (test images, test labels).
        for pair in stride(from: 0, to: checks.count, by: 2) {
            guard let images = counts[pair], let labels = counts[pair + 1] else { continue }
            do {
                try DataSplit.checkCounts(images: images, imagesPath: checks[pair].path, labels: labels, labelsPath: checks[pair + 1].path)
            } catch let error as DataError {
                checks[pair + 1] = DataFileCheck(path: checks[pair + 1].path, summary: "failed", problem: error)
            }
        }
        return checks
    }

    private static func checkFile(_ file: DataFile, path: String) throws -> (count: Int, checksum: String) {
        let content = try IDXFile.readContent(path)
        // Structure first: its messages say more than a checksum mismatch.
        let count = file.kind == .images
            ? try IDXFile.parseImages(content, path: path).count
            : try IDXFile.parseLabels(content, path: path).count
        let checksum: String
        if let expected = file.checksums.content {
            let found = md5Hex(content)
            guard found == expected else { throw DataError(file: path, "MD5 of content is \(found), expected \(expected)") }
            checksum = "MD5 of content matches"
        } else if path.hasSuffix(".gz") {
            let found = md5Hex(try LocalFile.readAll(path))
            guard found == file.checksums.compressed else {
                throw DataError(file: path, "MD5 is \(found), expected \(file.checksums.compressed)")
            }
            checksum = "MD5 matches"
        } else {
            checksum = "no published MD5 for uncompressed content"
        }
        return (count, checksum)
    }
}
