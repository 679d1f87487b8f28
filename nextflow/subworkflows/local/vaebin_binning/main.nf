//
// Coverage of every BAM in parallel, one depth table per contig set, then bins per contig set.
//
include { VAEBIN_COVERAGE    } from '../../../modules/local/vaebin/coverage/main'
include { VAEBIN_MERGEDEPTHS } from '../../../modules/local/vaebin/mergedepths/main'
include { VAEBIN_BIN         } from '../../../modules/local/vaebin/bin/main'

workflow VAEBIN_BINNING {

    take:
    ch_contigs // channel: [ val(meta), path(contigs) ]  meta.id names the contig set (assembly/group)
    ch_bams    // channel: [ val(meta), path(bam) ]      meta.id = sample, meta.group = contig set id;
               //          optional meta.group_size (BAMs in the group) lets merging start early

    main:
    // One coverage task per (BAM, contigs of its group).
    ch_coverage_input = ch_bams
        .map { meta, bam -> [ meta.group, meta, bam ] }
        .combine( ch_contigs.map { meta, contigs -> [ meta.id, contigs ] }, by: 0 )
        .map { group, meta, bam, contigs -> [ meta, contigs, bam ] }
    VAEBIN_COVERAGE ( ch_coverage_input )

    // Depth tables of a group in sample order: a stable order keeps the merged columns, and with
    // them the task hashes of -resume, the same from run to run.
    ch_merge_input = VAEBIN_COVERAGE.out.depth
        .map { meta, depth ->
            def key = meta.group_size ? groupKey(meta.group, meta.group_size as int) : meta.group
            [ key, [ meta.id, depth ] ]
        }
        .groupTuple()
        .map { key, samples_and_depths ->
            [ key.toString(), samples_and_depths.sort { pair -> pair[0] }.collect { pair -> pair[1] } ]
        }
        .join( ch_contigs.map { meta, contigs -> [ meta.id, meta ] } )
        .map { group, depths, meta -> [ meta, depths ] }
    VAEBIN_MERGEDEPTHS ( ch_merge_input )

    ch_bin_input = ch_contigs
        .join( VAEBIN_MERGEDEPTHS.out.depth )
        .map { meta, contigs, depth -> [ meta, contigs, depth, [] ] }
    VAEBIN_BIN ( ch_bin_input )

    emit:
    depths   = VAEBIN_COVERAGE.out.depth    // channel: [ val(meta), path(depth) ]   one per BAM
    depth    = VAEBIN_MERGEDEPTHS.out.depth // channel: [ val(meta), path(depth) ]   one per contig set
    bins     = VAEBIN_BIN.out.bins          // channel: [ val(meta), [ path(bin) ] ]
    clusters = VAEBIN_BIN.out.clusters      // channel: [ val(meta), path(clusters.tsv) ]
    binning  = VAEBIN_BIN.out.binning       // channel: [ val(meta), path(*.binning) ]
    unbinned = VAEBIN_BIN.out.unbinned      // channel: [ val(meta), path(unbinned.fna.gz) ]
    summary  = VAEBIN_BIN.out.summary       // channel: [ val(meta), path(summary.json) ]
}
