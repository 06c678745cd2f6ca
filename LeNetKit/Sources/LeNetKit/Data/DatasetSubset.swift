extension Dataset {
    /// A dataset from splits already in memory (e.g. a subset, for tests).
    public init(train: DataSplit, test: DataSplit, kind: DatasetKind = .mnist, directory: String = "(in memory)") {
        self.init(kind: kind, directory: directory, train: train, test: test)
    }
}

extension DataSplit {
    /// The first `count` images and labels (all of them if there are fewer).
    public func prefix(_ count: Int) -> DataSplit {
        let n = min(max(0, count), self.count)
        // The parts of a valid split make a valid split.
        return (try? DataSplit(name: name, pixels: Array(pixels[0..<(n * Self.pixelsPerImage)]),
                               labels: Array(labels[0..<n]))) ?? self
    }
}
