import ArgumentParser
import Foundation
import LeNetKit

extension DatasetKind: @retroactive ExpressibleByArgument {}

/// Where the data is: shared by every subcommand that reads the dataset.
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Directory with the IDX files (itself, or its MNIST/raw). Default: ./data.")
    var dataDirectory: String?

    @Option(help: "mnist or fashion-mnist.")
    var dataset: DatasetKind = .mnist
}

/// Download messages go to standard error so standard output stays parseable.
func printToStandardError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Fetch, check and describe the dataset files.",
        subcommands: [Download.self, Verify.self, Info.self]
    )

    struct Download: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Download missing files from the public mirrors (MD5-checked).")
        @OptionGroup var data: DataOptions

        func run() throws {
            let location = try Dataset.locate(
                kind: data.dataset, dataDirectory: data.dataDirectory,
                downloader: Downloader(kind: data.dataset), progress: printToStandardError)
            print("\(data.dataset.rawValue) files are in \(location.directory)")
            for path in location.paths { print("  \(path)") }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check checksums, counts and format of every file.")
        @OptionGroup var data: DataOptions

        func run() throws {
            let checks = try Dataset.verify(kind: data.dataset, dataDirectory: data.dataDirectory)
            for check in checks {
                if let problem = check.problem {
                    print("FAIL \(problem)")
                } else {
                    print("OK   \(check.path) (\(check.summary))")
                }
            }
            if let problem = checks.lazy.compactMap(\.problem).first { throw problem }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show where the data is and how many images each class has.")
        @OptionGroup var data: DataOptions

        func run() throws {
            let dataset = try Dataset.load(kind: data.dataset, dataDirectory: data.dataDirectory, download: false)
            print("Dataset: \(dataset.kind.rawValue)")
            print("Directory: \(dataset.directory)")
            let names = dataset.kind.classNames
            let width = max(5, names.map(\.count).max() ?? 0)
            print("class".padding(toLength: width, withPad: " ", startingAt: 0) + "   train    test")
            let train = dataset.train.classCounts, test = dataset.test.classCounts
            for label in 0..<10 {
                print(names[label].padding(toLength: width, withPad: " ", startingAt: 0)
                      + String(format: " %7d %7d", train[label], test[label]))
            }
            print("total".padding(toLength: width, withPad: " ", startingAt: 0)
                  + String(format: " %7d %7d", dataset.train.count, dataset.test.count))
        }
    }
}
