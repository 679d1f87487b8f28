//
// Reads and checks the samplesheet: one row per sample BAM (contigs), or one row per sample's
// long reads (no assembly).
//
//   sample,bam,group,contigs             sample,reads,group
//   s1,s1.bam,asm1,asm1.fna.gz           s1,s1.fq.gz,g1
//
// A sheet with a `reads` column is a long-read sheet:
//
// sample   required  sample name
// reads    required  the sample's long reads (FASTQ or FASTA, gzipped or not)
// group    optional  the rows of a group are binned together, each file giving one sample's
//                    k-mer abundances. Empty: `all`.
//
// Otherwise (columns sample,bam[,group][,contigs]):
//
// sample   required  sample name; names the depth column and the coverage files
// bam      required  coordinate-sorted BAM of the sample's reads mapped to the group's contigs
// group    optional  contig set (assembly) the BAM was mapped to; the rows of a group are binned
//                    together, each BAM giving one coverage sample. Empty: the sample's own name
//                    when the row names its contigs, `all` when the contigs come from --contigs.
// contigs  optional  contigs of the group (FASTA, gzipped or not); identical on every row of a
//                    group. Empty or absent: --contigs.
//
// Relative paths are taken relative to the samplesheet's directory. Every problem is reported
// with the file, the line and the column, and stops the run before any task starts.
//

import java.nio.file.Files
import java.nio.file.Path
import nextflow.Nextflow

class VaebinSamplesheet {

    static final List<String> REQUIRED_COLUMNS = [ 'sample', 'bam' ]
    static final List<String> OPTIONAL_COLUMNS = [ 'group', 'contigs' ]
    static final List<String> READS_REQUIRED_COLUMNS = [ 'sample', 'reads' ]
    static final List<String> READS_OPTIONAL_COLUMNS = [ 'group' ]
    static final String READS_PATTERN = /.*\.(fq|fastq|fa|fasta|fna|fas)(\.gz|\.bgz)?$/
    static final String NAME_PATTERN = /[A-Za-z0-9][A-Za-z0-9_.\-]*/
    static final String CONTIGS_PATTERN = /.*\.(fa|fna|fasta|fas)(\.gz)?$/
    static final String DEFAULT_GROUP = 'all'

    /**
     * The rows of the samplesheet as maps with keys sample, bam (Path), group, contigs (Path),
     * group_size and line; of a long-read sheet, with keys sample, reads (Path), group, group_size
     * and line. Raises a one-line error naming the line and column of a problem.
     */
    static List<Map> parse(Object samplesheet, Object contigsParameter) {
        def sheet = samplesheet instanceof Path ? samplesheet as Path : Nextflow.file(samplesheet.toString()) as Path
        def where = "Samplesheet '${sheet}'"
        if (!Files.isRegularFile(sheet)) {
            fail("${where}: file not found")
        }
        def lines = sheet.readLines()
        def numbered = []
        lines.eachWithIndex { text, index ->
            if (text.trim() && !text.trim().startsWith('#')) {
                numbered << [ index + 1, text ]
            }
        }
        if (!numbered) {
            fail("${where}: empty; expected a header line `sample,bam,group,contigs` and one row per BAM")
        }
        def header = splitCsvLine(numbered[0][1] as String, where, numbered[0][0] as int).collect { it.trim().toLowerCase() }
        def reads_sheet = header.contains('reads')
        if (reads_sheet) {
            checkReadsHeader(header, where, contigsParameter)
        }
        else {
            checkHeader(header, where)
        }
        if (numbered.size() == 1) {
            fail("${where}: no rows after the header")
        }

        def rows = []
        for (entry in numbered.drop(1)) {
            def line = entry[0] as int
            def values = splitCsvLine(entry[1] as String, where, line).collect { it.trim() }
            if (values.size() != header.size()) {
                fail("${where} line ${line}: expected ${header.size()} columns (${header.join(',')}), found ${values.size()}")
            }
            def record = [ header, values ].transpose().collectEntries { column, value -> [ column, value ] }
            rows << (reads_sheet ? checkReadsRow(record, line, sheet) : checkRow(record, line, sheet, contigsParameter))
        }
        checkGroups(rows, where)
        def group_sizes = rows.countBy { row -> row.group }
        return rows.collect { row -> row + [ group_size: group_sizes[row.group] ] }
    }

    static void checkHeader(List<String> header, String where) {
        for (column in REQUIRED_COLUMNS) {
            if (!header.contains(column)) {
                fail("${where}: missing required column '${column}' (header: ${header.join(',')})")
            }
        }
        def known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
        for (column in header) {
            if (!known.contains(column)) {
                fail("${where}: unknown column '${column}'; expected columns: ${known.join(', ')}")
            }
        }
        def duplicated = header.findAll { column -> header.count(column) > 1 }.unique()
        if (duplicated) {
            fail("${where}: column '${duplicated[0]}' appears more than once")
        }
    }

    static void checkReadsHeader(List<String> header, String where, Object contigsParameter) {
        for (column in header) {
            if (column in [ 'bam', 'contigs' ]) {
                fail("${where}: column '${column}' cannot be combined with column 'reads'; a samplesheet lists " +
                    "either BAMs (sample,bam[,group][,contigs]) or long reads (sample,reads[,group])")
            }
        }
        def known = READS_REQUIRED_COLUMNS + READS_OPTIONAL_COLUMNS
        for (column in header) {
            if (!known.contains(column)) {
                fail("${where}: unknown column '${column}'; expected columns of a long-read samplesheet: ${known.join(', ')}")
            }
        }
        if (!header.contains('sample')) {
            fail("${where}: missing required column 'sample' (header: ${header.join(',')})")
        }
        def duplicated = header.findAll { column -> header.count(column) > 1 }.unique()
        if (duplicated) {
            fail("${where}: column '${duplicated[0]}' appears more than once")
        }
        if (contigsParameter) {
            fail("${where}: --contigs is not used with a long-read samplesheet (column 'reads'): the reads are binned without contigs")
        }
    }

    static Map checkReadsRow(Map record, int line, Path sheet) {
        def sample = record.sample as String
        def where = "Samplesheet '${sheet}' line ${line}" + (sample ? " (sample '${sample}')" : '')
        if (!sample) {
            fail("${where}, column 'sample': empty")
        }
        if (!(sample ==~ NAME_PATTERN)) {
            fail("${where}, column 'sample': '${sample}' must start with a letter or digit and use only letters, digits, '_', '.' and '-'")
        }

        def reads_text = record.reads as String
        if (!reads_text) {
            fail("${where}, column 'reads': empty")
        }
        if (!(reads_text ==~ READS_PATTERN)) {
            fail("${where}, column 'reads': '${reads_text}' is not a FASTQ or FASTA file (.fq, .fastq, .fa, .fasta, .fna, .fas, optionally .gz or .bgz)")
        }
        def reads = resolve(reads_text, sheet)
        if (!Files.isRegularFile(reads)) {
            fail("${where}, column 'reads': file not found: ${reads}")
        }

        def group = (record.group ?: DEFAULT_GROUP) as String
        if (!(group ==~ NAME_PATTERN)) {
            fail("${where}, column 'group': '${group}' must start with a letter or digit and use only letters, digits, '_', '.' and '-'")
        }
        return [ sample: sample, reads: reads, group: group, line: line ]
    }

    static Map checkRow(Map record, int line, Path sheet, Object contigsParameter) {
        def sample = record.sample as String
        def where = "Samplesheet '${sheet}' line ${line}" + (sample ? " (sample '${sample}')" : '')
        if (!sample) {
            fail("${where}, column 'sample': empty")
        }
        if (!(sample ==~ NAME_PATTERN)) {
            fail("${where}, column 'sample': '${sample}' must start with a letter or digit and use only letters, digits, '_', '.' and '-'")
        }

        def bam_text = record.bam as String
        if (!bam_text) {
            fail("${where}, column 'bam': empty")
        }
        if (!bam_text.endsWith('.bam')) {
            fail("${where}, column 'bam': '${bam_text}' is not a .bam file")
        }
        def bam = resolve(bam_text, sheet)
        if (!Files.isRegularFile(bam)) {
            fail("${where}, column 'bam': file not found: ${bam}")
        }

        def contigs_text = (record.contigs ?: '') as String
        def contigs_column = contigs_text ? 'contigs' : null
        if (!contigs_text) {
            contigs_text = contigsParameter ? contigsParameter.toString() : ''
        }
        if (!contigs_text) {
            fail("${where}, column 'contigs': empty and no --contigs given; name the contigs of the group in the samplesheet or with --contigs")
        }
        def contigs_label = contigs_column ? "column 'contigs'" : 'parameter --contigs'
        if (!(contigs_text ==~ CONTIGS_PATTERN)) {
            fail("${where}, ${contigs_label}: '${contigs_text}' is not a FASTA file (.fa, .fna, .fasta, .fas, optionally .gz)")
        }
        def contigs = contigs_column ? resolve(contigs_text, sheet) : (Nextflow.file(contigs_text) as Path)
        if (!Files.isRegularFile(contigs)) {
            fail("${where}, ${contigs_label}: file not found: ${contigs}")
        }

        def group = (record.group ?: '') as String
        if (!group) {
            group = contigs_column ? sample : DEFAULT_GROUP
        }
        if (!(group ==~ NAME_PATTERN)) {
            fail("${where}, column 'group': '${group}' must start with a letter or digit and use only letters, digits, '_', '.' and '-'")
        }
        return [ sample: sample, bam: bam, group: group, contigs: contigs, line: line ]
    }

    static void checkGroups(List<Map> rows, String where) {
        def seen = [:]
        def contigs_of_group = [:]
        def line_of_reads = [:]
        for (row in rows) {
            // A String, not a GString: a GString key is never found again by containsKey.
            def key = "${row.group}/${row.sample}".toString()
            if (seen.containsKey(key)) {
                fail("${where} line ${row.line} (sample '${row.sample}'), column 'sample': '${row.sample}' already given on line ${seen[key]} for group '${row.group}'")
            }
            seen[key] = row.line
            if (row.reads != null) {
                def file_key = [ row.group, row.reads.toString() ]
                if (line_of_reads.containsKey(file_key)) {
                    fail("${where} line ${row.line} (sample '${row.sample}'), column 'reads': ${row.reads} already given on line ${line_of_reads[file_key]} for group '${row.group}'")
                }
                line_of_reads[file_key] = row.line
                continue
            }
            def first = contigs_of_group[row.group]
            if (first == null) {
                contigs_of_group[row.group] = row
            }
            else if (first.contigs != row.contigs) {
                fail("${where} line ${row.line} (sample '${row.sample}'), column 'contigs': group '${row.group}' uses ${first.contigs} on line ${first.line}, this row names ${row.contigs}")
            }
        }
    }

    /** A path of the samplesheet: absolute or a URL as given, otherwise relative to the sheet. */
    static Path resolve(String text, Path sheet) {
        if (text.startsWith('/') || text =~ /^[a-zA-Z][a-zA-Z0-9+.\-]*:\/\//) {
            return Nextflow.file(text) as Path
        }
        return sheet.toAbsolutePath().parent.resolve(text).normalize()
    }

    /** Splits one CSV line; fields may be double-quoted, with "" for a quote inside. */
    static List<String> splitCsvLine(String text, String where, int line) {
        def fields = []
        def field = new StringBuilder()
        boolean quoted = false
        int index = 0
        while (index < text.length()) {
            char character = text.charAt(index)
            if (quoted) {
                if (character == '"' as char && index + 1 < text.length() && text.charAt(index + 1) == '"' as char) {
                    field.append('"')
                    index++
                }
                else if (character == '"' as char) {
                    quoted = false
                }
                else {
                    field.append(character)
                }
            }
            else if (character == '"' as char) {
                quoted = true
            }
            else if (character == ',' as char) {
                fields << field.toString()
                field.setLength(0)
            }
            else if (character != '\r' as char) {
                field.append(character)
            }
            index++
        }
        if (quoted) {
            fail("${where} line ${line}: unclosed double quote")
        }
        fields << field.toString()
        return fields
    }

    static void fail(String message) {
        Nextflow.error(message)
    }
}
