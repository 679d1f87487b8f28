process VAEBIN_SIMULATE {
    tag "$meta.id"
    label 'process_single'

    conda "${moduleDir}/environment.yml"
    container "${ workflow.containerEngine in ['singularity', 'apptainer'] && !task.ext.singularity_pull_docker_container
        ? (task.ext.singularity_image ?: 'https://depot.galaxyproject.org/singularity/vaebin-rs:0.1.0--0')
        : (task.ext.docker_image ?: 'biocontainers/vaebin-rs:0.1.0--0') }"

    input:
    val(meta)

    output:
    tuple val(meta), path("${prefix}/contigs.fna.gz")  , emit: contigs
    tuple val(meta), path("${prefix}/*.bam")           , emit: bams
    tuple val(meta), path("${prefix}/*.bam.bai")       , emit: bais
    tuple val(meta), path("${prefix}/truth.binning")   , emit: truth
    tuple val(meta), path("${prefix}/samplesheet.csv") , emit: samplesheet
    tuple val("${task.process}"), val('vaebin-rs'), eval("vaebin-rs --version | sed 's/^vaebin-rs //; s/ .*//'"), emit: versions_vaebin_rs, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    vaebin-rs simulate \\
        --outdir ${prefix} \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}
    printf '>contig_1\\nACGTACGTAC\\n>contig_2\\nGGCCTTAAGG\\n' | gzip -c > ${prefix}/contigs.fna.gz
    touch ${prefix}/sample1.bam ${prefix}/sample1.bam.bai ${prefix}/sample2.bam ${prefix}/sample2.bam.bai
    printf '@Version:0.9.1\\n@SampleID:${meta.id}\\n\\n@@SEQUENCEID\\tBINID\\ncontig_1\\tgenome_1\\ncontig_2\\tgenome_2\\n' > ${prefix}/truth.binning
    printf 'sample,bam,group,contigs\\nsample1,sample1.bam,${meta.id},contigs.fna.gz\\nsample2,sample2.bam,${meta.id},contigs.fna.gz\\n' > ${prefix}/samplesheet.csv
    """
}
