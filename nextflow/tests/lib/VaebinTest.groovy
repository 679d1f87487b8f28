import java.security.MessageDigest
import java.util.zip.GZIPInputStream

/**
 * Stable descriptions of outputs for the nf-test snapshots (nf-test puts tests/lib on the class
 * path). A snapshot must change when the content changes and only then: no timestamps, no work
 * directory paths, no compressor bytes.
 */
class VaebinTest {

    /**
     * "<name>:md5,<hex>" of the decompressed content of a gzip/BGZF file such as a BAM: the records
     * themselves, independent of the compression library and level that wrote them.
     */
    static String decompressedMd5(Object file) {
        def path = new File(file.toString())
        def digest = MessageDigest.getInstance('MD5')
        path.withInputStream { raw ->
            // GZIPInputStream reads concatenated members, so a BGZF file as a whole.
            def stream = new GZIPInputStream(raw, 65536)
            byte[] buffer = new byte[65536]
            int count
            while ((count = stream.read(buffer)) > 0) {
                digest.update(buffer, 0, count)
            }
        }
        return "${path.name}:md5,${digest.digest().encodeHex()}"
    }

    /** Paths of the files under `folder`, relative to it, sorted; those matching `exclude` left out. */
    static List<String> relativeFiles(Object folder, String exclude = null) {
        def root = new File(folder.toString()).toPath()
        def found = []
        root.toFile().eachFileRecurse(groovy.io.FileType.FILES) { file ->
            def relative = root.relativize(file.toPath()).toString()
            if (exclude == null || !(relative ==~ exclude)) {
                found << relative
            }
        }
        return found.sort()
    }

    /** Names of the records of a FASTA or FASTQ file, gzipped or not, in file order. */
    static List<String> recordNames(Object file) {
        def path = new File(file.toString())
        def lines = path.withInputStream { raw ->
            def head = new PushbackInputStream(raw, 2)
            byte[] magic = new byte[2]
            int read = head.read(magic)
            if (read > 0) {
                head.unread(magic, 0, read)
            }
            def gzipped = read == 2 && magic[0] == (byte) 0x1f && magic[1] == (byte) 0x8b
            def input = gzipped ? new GZIPInputStream(head) : head
            input.newReader('UTF-8').readLines()
        }
        if (lines.isEmpty()) {
            return []
        }
        if (lines[0].startsWith('@')) {
            return lines.withIndex().findAll { line, index -> index % 4 == 0 }
                .collect { line, index -> line.substring(1).tokenize()[0] }
        }
        return lines.findAll { line -> line.startsWith('>') }.collect { line -> line.substring(1).tokenize()[0] }
    }

    /**
     * Whether this machine has an NVIDIA GPU (`nvidia-smi -L` lists one). The GPU test cases call
     * skip() without one, so `nf-test test` passes on CPU-only machines and CI.
     */
    static boolean gpuAvailable() {
        try {
            def probe = [ 'nvidia-smi', '-L' ].execute()
            def listing = probe.text
            return probe.waitFor() == 0 && listing.contains('GPU ')
        }
        catch (IOException missing) {
            return false
        }
    }
}
