// Test fixture: long reads of a toy community (`vaebin-rs simulate --long-reads`), one gzipped
// FASTQ per sample. VAEBIN_SIMULATE makes contigs and BAMs, which this module does not take.
process SIMULATE_LONG_READS {
    tag "$meta.id"
    label 'process_single'

    input:
    val(meta)

    output:
    tuple val(meta), path("${meta.id}/*.fq.gz")      , emit: reads
    tuple val(meta), path("${meta.id}/truth.binning"), emit: truth

    script:
    """
    vaebin-rs simulate --long-reads --preset toy --seed 1 --outdir ${meta.id} -q
    """

    stub:
    """
    mkdir -p ${meta.id}
    printf '@S1R1\\nACGTACGTAC\\n+\\nIIIIIIIIII\\n@S1R2\\nGGCCTTAAGG\\n+\\nIIIIIIIIII\\n' | gzip -c > ${meta.id}/sample1.fq.gz
    printf '@S2R1\\nTTGACCAGTA\\n+\\nIIIIIIIIII\\n' | gzip -c > ${meta.id}/sample2.fq.gz
    printf '@Version:0.9.1\\n@SampleID:${meta.id}\\n\\n@@SEQUENCEID\\tBINID\\nS1R1\\tgenome_1\\nS1R2\\tgenome_2\\nS2R1\\tgenome_1\\n' > ${meta.id}/truth.binning
    """
}
