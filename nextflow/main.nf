#!/usr/bin/env nextflow
/*
 * vaebin-rs: bin metagenome contigs with a variational autoencoder and HDBSCAN.
 *
 *   samplesheet (sample,bam[,group][,contigs])
 *     -> VAEBIN_COVERAGE     one task per BAM, in parallel
 *     -> VAEBIN_MERGEDEPTHS  one depth table per group (contig set)
 *     -> VAEBIN_BIN          bins per group, on a GPU with -profile gpu
 *
 *   samplesheet (sample,reads[,group]): long reads, no assembly
 *     -> VAEBIN_BINREADS     read bins per group (all its samples' reads), on a GPU with -profile gpu
 *
 *   nextflow run nextflow/main.nf --input samplesheet.csv --outdir results -profile docker
 *   nextflow run nextflow/main.nf -profile test --outdir results
 */

// Channel topics carry the tool versions; a preview feature in Nextflow 24.10, standard from 25.04.
nextflow.preview.topic = true

include { VAEBIN_SIMULATE } from './modules/local/vaebin/simulate/main'
include { VAEBIN_BINREADS } from './modules/local/vaebin/binreads/main'
include { VAEBIN_BINNING  } from './subworkflows/local/vaebin_binning/main'

workflow {

    def schema = file("${projectDir}/nextflow_schema.json")
    if (params.help) {
        log.info VaebinSchema.helpText(schema, 'nextflow run nextflow/main.nf --input samplesheet.csv --outdir results [-profile docker|singularity|...]')
        return
    }
    if (params.validate_params) {
        VaebinSchema.validateParameters(params, schema, log)
    }
    if (!params.input && !params.simulate) {
        error("Give a samplesheet with --input samplesheet.csv (or --simulate toy, or -profile test)")
    }
    if (params.input && params.simulate) {
        error("Give either --input or --simulate, not both")
    }

    //
    // Rows of the samplesheet: [ sample, bam, group, contigs, group_size, line ], or of a long-read
    // samplesheet [ sample, reads, group, group_size, line ]. A given samplesheet is checked now,
    // before any task starts; a simulated one (always contigs and BAMs) once it exists.
    //
    def rows = params.input ? VaebinSamplesheet.parse(file(params.input), params.contigs) : null
    def long_reads = rows && rows[0].containsKey('reads')

    if (long_reads) {
        // One task per group with the read files of all its samples, in sample order: a stable
        // order keeps the feature columns, and with them the task hash of -resume, the same.
        ch_reads = Channel.fromList(
            rows.groupBy { row -> row.group }.collect { group, group_rows ->
                [ [ id: group ], group_rows.sort { row -> row.sample }.collect { row -> row.reads } ]
            }
        )
        VAEBIN_BINREADS ( ch_reads )
    }
    else {
        if (params.input) {
            ch_rows = Channel.fromList(rows)
        }
        else {
            VAEBIN_SIMULATE ( [ id: params.simulate ] )
            ch_rows = VAEBIN_SIMULATE.out.samplesheet
                .flatMap { meta, samplesheet -> VaebinSamplesheet.parse(samplesheet, params.contigs) }
        }

        ch_bams = ch_rows
            .map { row -> [ [ id: row.sample, group: row.group, group_size: row.group_size ], row.bam ] }
        ch_contigs = ch_rows
            .map { row -> [ [ id: row.group ], row.contigs ] }
            .unique()

        VAEBIN_BINNING ( ch_contigs, ch_bams )
    }

    //
    // Versions of every tool that ran, nf-core style: <outdir>/pipeline_info/software_versions.yml
    //
    channel.topic('versions')
        .map { process, tool, version -> [ process.tokenize(':')[-1], tool, version ] }
        .unique()
        .map { process, tool, version -> "${process}:\n  ${tool}: ${version}" }
        .collectFile(
            name: 'software_versions.yml',
            storeDir: "${params.outdir}/pipeline_info",
            newLine: true,
            sort: true,
        )

}
